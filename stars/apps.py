from django.apps import AppConfig


class StarsConfig(AppConfig):
    name = "stars"
    verbose_name = "Stars (multi-agent teams)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import executors  # noqa: F401  (registers the "star" run kind with cosmos)
