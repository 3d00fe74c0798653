from django.apps import AppConfig


class AgentProtocolConfig(AppConfig):
    """LangGraph's Agent Protocol door; its one table keeps what a thread has beyond a session."""

    name = "interfaces.agent_protocol"
    label = "agent_protocol"
    verbose_name = "Agent Protocol"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from interfaces.agent_protocol import views
        from interfaces.edge.errors import register_edge_renderer

        # What the edge refuses before any view (a body over the limit, a NUL in the URL) is
        # answered in the protocol's shape on the door's paths too.
        register_edge_renderer(views.render_edge)
