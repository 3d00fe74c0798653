from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    """Runs on a clock: schedules of agents, stars and workflows, fired by Celery beat."""

    name = "interfaces.schedules"
    label = "schedules"
    verbose_name = "Schedules"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import signals

        signals.connect()
