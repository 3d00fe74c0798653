from django.apps import AppConfig


class CosmosConfig(AppConfig):
    name = "cosmos"
    verbose_name = "Cosmos (agents and runs)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import configuration, signals  # noqa: F401  (signal hooks)
        from .executors import execute_agent
        from .kinds import register_kind
        from .models import AGENT_KIND, Agent
        from .services.agents import check_runnable

        register_kind(AGENT_KIND, execute_agent, check_runnable, target_model=Agent, description="agent")
        configuration.configure()
