from django.apps import AppConfig


class CosmosConfig(AppConfig):
    name = "cosmos"
    verbose_name = "Cosmos (agents and runs)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import executors, outbound, signals  # noqa: F401  (registers the agent executor and signal hooks)
        from .runtime.tools import autodiscover_tools

        autodiscover_tools()
        outbound.set_allowlist_source(_outbound_allowlist)


def _outbound_allowlist() -> tuple[str, ...]:
    """``ASTEROS_OUTBOUND_ALLOWLIST`` (with the old A2A allowlist), read at every connection."""
    from django.conf import settings

    return tuple(getattr(getattr(settings, "ASTEROS", None), "outbound_allowlist", ()) or ())
