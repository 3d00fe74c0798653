from django.apps import AppConfig


class CosmosConfig(AppConfig):
    name = "cosmos"
    verbose_name = "Cosmos (agents and runs)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import configuration, signals  # noqa: F401  (signal hooks)
        from .executors import execute_agent
        from .kinds import register_kind
        from .models import AGENT_KIND, Agent, AgentTemplate
        from .services import agents, revisions

        register_kind(AGENT_KIND, execute_agent, agents.check_runnable, target_model=Agent, description="agent")
        revisions.register(AGENT_KIND, Agent, agents.agent_definition, agents.apply_agent_definition)
        revisions.register(
            "template",
            AgentTemplate,
            agents.template_definition,
            agents.apply_template_definition,
            dependents=agents.agents_of_template,
        )
        configuration.configure()
