"""Fixtures of the webhook tests: a local receiver the outbound policy lets through, short retries."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.webhook_receiver import WebhookReceiver

# The first retry after this long (ASTEROS_WEBHOOK_FIRST_RETRY_SECONDS), the next ones doubling.
FAST_FIRST_RETRY = 0.2


@pytest.fixture
def receiver(settings_options) -> Iterator[WebhookReceiver]:
    """A receiver on 127.0.0.1, on the outbound allowlist (loopback is refused otherwise)."""
    with WebhookReceiver() as running:
        settings_options(outbound_allowlist=(running.host_port,), webhook_first_retry_seconds=FAST_FIRST_RETRY)
        yield running
