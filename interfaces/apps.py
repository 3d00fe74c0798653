from django.apps import AppConfig


class InterfacesConfig(AppConfig):
    name = "interfaces"
    verbose_name = "Interfaces (API, A2A, AG-UI, dashboard)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cosmos.services.runs import register_admission_check

        from . import admin_live, quotas
        from .a2a import declared, edge

        admin_live.install()  # run/cancel/retry actions and the live Run page, on cosmos's admin
        register_admission_check(quotas.admit_run)  # per-API-key run quotas, on every entry point
        declared.install()  # remote A2A agents declared in the admin: tools, and the "a2a" provider
        edge.install()  # the A2A bindings' error shapes for what the edge refuses (413, 400)
