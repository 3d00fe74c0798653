"""``/health`` checks what each part really uses: live events the bus, runs the Celery broker.

Both are Redis in distributed mode, but through different connections: each check must fail
when its own connection fails and only then.
"""

from __future__ import annotations

import socket

import pytest

from cosmos import bus as bus_module
from cosmos.bus import RedisBus
from interfaces.http.health import health_report


def closed_redis_url() -> str:
    """A Redis URL on a port nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.django_db
def test_live_events_in_embedded_mode_are_the_in_process_bus(settings):
    if settings.ASTEROS.distributed:
        pytest.skip("embedded mode only")
    checks = health_report()[0]["checks"]
    assert checks["live_events"]["ok"] and checks["live_events"]["bus"] == "embedded"
    assert "channel_layer" not in checks


@pytest.mark.django_db
def test_live_events_fail_when_the_bus_cannot_reach_redis(settings_options, monkeypatch):
    dead = closed_redis_url()
    settings_options(redis_url=dead)
    monkeypatch.setattr(bus_module, "_bus", RedisBus(dead))
    body, status = health_report()
    assert status == 503 and "live_events" in body["failing"], body
    assert "ConnectionError" in body["checks"]["live_events"]["error"]


@pytest.mark.services
@pytest.mark.django_db
def test_distributed_checks_are_the_bus_and_the_broker_each_on_its_own(settings):
    from celery import current_app

    checks = health_report()[0]["checks"]
    assert checks["live_events"] == checks["live_events"] | {"ok": True, "bus": "redis"}
    assert checks["broker"] == checks["broker"] | {"ok": True, "url": "redis"}
    # The broker down, the bus up: only the broker fails.
    original = current_app.conf.broker_url
    current_app.conf.broker_url = closed_redis_url()
    try:
        body, status = health_report()
    finally:
        current_app.conf.broker_url = original
    assert status == 503 and "broker" in body["failing"] and body["checks"]["live_events"]["ok"], body
