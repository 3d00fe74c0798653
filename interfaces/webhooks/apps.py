from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    """Calls back when runs change: webhook subscriptions and A2A push notifications, one delivery
    machinery (signed, retried, logged), out through ``cosmos.outbound``."""

    name = "interfaces.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from cosmos.engine import register_periodic
        from cosmos.services.leases import run_changed

        from . import runs
        from .deliveries import sweep_due
        from .models import Webhook

        # Run events: the fast path after each commit, and the sweep behind it.
        run_changed.connect(runs.on_run_changed, dispatch_uid="webhooks.run_events")
        post_save.connect(runs.forget_enabled, sender=Webhook, dispatch_uid="webhooks.forget_enabled.save")
        post_delete.connect(runs.forget_enabled, sender=Webhook, dispatch_uid="webhooks.forget_enabled.delete")
        register_periodic("webhooks.sweep_missed", runs.sweep_missed, every_seconds=runs.SWEEP_MISSED_SECONDS)
        # Retries, and deliveries whose task was lost, from every process that runs an engine.
        register_periodic("webhooks.sweep_due", sweep_due, every_seconds=1.0)
