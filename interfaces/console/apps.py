from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The operator's pages: the live dashboard and the run actions of the admin."""

    name = "interfaces.console"
    label = "console"
    verbose_name = "Console (dashboard and live admin)"

    def ready(self) -> None:
        from interfaces.console import admin_live

        admin_live.install()  # run/cancel/retry actions and the live Run page, on cosmos's admin
