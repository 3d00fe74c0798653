from django.apps import AppConfig


class AgentProtocolConfig(AppConfig):
    """LangGraph's Agent Protocol door; its one table keeps what a thread has beyond a session."""

    name = "interfaces.agent_protocol"
    label = "agent_protocol"
    verbose_name = "Agent Protocol"
    default_auto_field = "django.db.models.BigAutoField"
