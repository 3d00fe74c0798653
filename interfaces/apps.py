from django.apps import AppConfig


class InterfacesConfig(AppConfig):
    name = "interfaces"
    verbose_name = "Interfaces (API, A2A, AG-UI, dashboard)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import admin_live

        admin_live.install()  # run/cancel/retry actions and the live Run page, on cosmos's admin
