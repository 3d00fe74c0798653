"""The HTTP interface: the default interface of every ``AsterOS``.

Its routes (the DRF API generated from ``interfaces.http.registry.site``, /health, /metrics) are
part of the project's URLconf, served by whichever ASGI server runs Django; so ``start`` and
``stop`` only record and log, and registrations need no callback: a registered agent is a row,
and rows are what the API serves.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from interfaces.base import Interface

if TYPE_CHECKING:
    from asteros_site.system import AsterOS

logger = logging.getLogger(__name__)


class HTTPInterface(Interface):
    name = "http"
    type = "http"

    def start(self, os: AsterOS) -> None:
        super().start(os)
        from interfaces.http.urls import api_prefix

        logger.info("HTTP interface serving", extra={"api_prefix": f"/{api_prefix()}", "os": os.name})

    def stop(self) -> None:
        logger.info("HTTP interface stopped (its routes stay in the URLconf of this process)")
