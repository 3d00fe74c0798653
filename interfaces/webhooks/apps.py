from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Calls back when runs change: webhook subscriptions and A2A push notifications, one delivery
    machinery (signed, retried, logged), out through ``cosmos.outbound``."""

    name = "interfaces.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from cosmos.engine import register_periodic

        from .deliveries import sweep_due

        # Retries, and deliveries whose task was lost, from every process that runs an engine.
        register_periodic("webhooks.sweep_due", sweep_due, every_seconds=1.0)
