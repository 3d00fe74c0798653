from django.apps import AppConfig


class InterfacesConfig(AppConfig):
    """The doors (REST, A2A, AG-UI, websockets) and the edge they share.

    The app also keeps the migration history of the models that moved to ``interfaces.keys``
    and ``interfaces.connectors`` (their tables kept their names).
    """

    name = "interfaces"
    verbose_name = "Interfaces (API, A2A, AG-UI, websockets)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from interfaces.a2a import edge, push
        from interfaces.http import resources  # noqa: F401  (registers the built-in REST resources)
        from interfaces.openai import errors as openai_errors

        edge.install()  # the A2A bindings' error shapes for what the edge refuses (413, 400)
        push.install()  # A2A push notifications: task updates to the clients' URLs, and their backstop
        openai_errors.install()  # OpenAI's error shape for what the edge refuses under /v1 (413)
