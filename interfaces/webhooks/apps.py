from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Calls back when runs change: webhook subscriptions and A2A push notifications, one delivery
    machinery (signed, retried, logged), out through ``cosmos.outbound``."""

    name = "interfaces.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"
