from django.apps import AppConfig


class AsterosSiteConfig(AppConfig):
    """The composition root: the ``AsterOS`` of this process, serving commands and routes."""

    name = "asteros_site"
    verbose_name = "AsterOS site"
