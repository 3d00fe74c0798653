from django.apps import AppConfig


class KeysConfig(AppConfig):
    """API keys: stored hashed, scoped to resources, with per-key quotas."""

    name = "interfaces.keys"
    label = "keys"
    verbose_name = "API keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cosmos.services.runs import register_admission_check
        from interfaces.keys import quotas

        register_admission_check(quotas.admit_run)  # per-API-key run quotas, on every entry point
