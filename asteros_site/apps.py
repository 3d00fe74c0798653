"""The composition root's app: its ``ready()`` is the one autodiscovery of the project.

Django calls every app's ``ready()`` in INSTALLED_APPS order, once every app is imported.
``asteros_site`` is listed after the project's apps (cosmos, stars, workflows, interfaces and
its rooms), so when its ``ready()`` imports the apps' modules, everything they build on is
registered already: the run kinds (cosmos, stars, workflows), the built-in REST resources (the
interfaces app), the admission checks, providers and admin pages of the rooms. An ``asteros.py``
can therefore unregister or replace a built-in resource, like ``admin.py`` with the admin. It is
still listed before ``daphne`` and ``django.contrib.staticfiles``, whose ``runserver`` its own
replaces (the first app listed wins a command's name).
"""

from __future__ import annotations

from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import autodiscover_modules

# The modules an installed app may write, each imported once per process at start-up: their
# ``@tool`` functions (cosmos.runtime.tools) and ``@workflow_function`` callables register on
# import. Always imported: agents and workflow steps name them.
CODE_MODULES = ("tools", "workflow_functions")
# An app's ``asteros`` module registers REST resources and AsterOS agents, stars, workflows and
# interfaces; imported when ASTEROS_AUTO_DISCOVER is on (the default).
DISCOVERY_MODULE = "asteros"


def autodiscover() -> None:
    """Import each installed app's ``tools``, ``workflow_functions`` and (with
    ``ASTEROS_AUTO_DISCOVER``) ``asteros`` modules. An ``asteros`` module that fails to import
    raises, and leaves the REST resource registry as it was before it.

    Importing only: what an ``asteros`` module registers with ``AsterOS`` is written to the
    database when the OS starts (``asteros_site.system.start_all``), never at import time.
    """
    from interfaces.http.registry import site

    autodiscover_modules(*CODE_MODULES)
    if settings.ASTEROS.auto_discover:
        autodiscover_modules(DISCOVERY_MODULE, register_to=site)


class AsterosSiteConfig(AppConfig):
    """The composition root: the ``AsterOS`` of this process, serving commands and routes."""

    name = "asteros_site"
    verbose_name = "AsterOS site"

    def ready(self) -> None:
        autodiscover()
