from django.apps import AppConfig


class CosmosConfig(AppConfig):
    name = "cosmos"
    verbose_name = "Cosmos (agents and runs)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import configuration, executors, signals  # noqa: F401  (registers the agent executor and signal hooks)

        configuration.configure()
