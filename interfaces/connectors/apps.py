from django.apps import AppConfig


class ConnectorsConfig(AppConfig):
    """What the server calls out to: remote A2A agents today (through ``cosmos.outbound``)."""

    name = "interfaces.connectors"
    label = "connectors"
    verbose_name = "Connectors (remote agents)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from interfaces.connectors import declared

        declared.install()  # remote A2A agents declared in the admin: tools, and the "a2a" provider
