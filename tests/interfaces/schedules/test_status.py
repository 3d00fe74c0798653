"""The scheduler in the banner and in ``/health``, and the embedded beat only where it belongs."""

from __future__ import annotations

import pytest

from asteros_site.banner import banner
from interfaces.http.health import health_report
from interfaces.schedules import services
from tests.factories import make_schedule

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("enabled", "distributed", "line"),
    [
        (True, False, "scheduler: embedded beat"),
        (True, True, "scheduler: celery beat (distributed: run `celery -A asteros_site beat`)"),
        (False, False, "scheduler: off (ASTEROS_ENABLE_SCHEDULER=false)"),
    ],
)
def test_the_banner_says_how_schedules_fire(settings_options, enabled, distributed, line):
    extra = {"redis_url": "redis://127.0.0.1:6379/0" if distributed else None}
    options = settings_options(enable_scheduler=enabled, **extra)
    assert options.distributed is distributed
    assert line in banner("127.0.0.1", 8080)


def test_health_reports_the_scheduler_and_never_fails_for_it(settings, settings_options):
    schedule = make_schedule(interval_seconds=60)
    services.fire(schedule.pk)
    scheduler = health_report()[0]["scheduler"]
    mode = "distributed" if settings.ASTEROS.distributed else "embedded"
    assert scheduler["enabled"] is True and scheduler["mode"] == mode and scheduler["schedules"] == 1
    assert "last_beat_at" in scheduler and "last_tick_at" in scheduler
    if mode == "embedded":
        assert scheduler["embedded_beat_running"] is services.embedded_beat_started()

    settings_options(enable_scheduler=False)
    body, _status = health_report()
    assert body["scheduler"] == {"enabled": False, "mode": "off"}
    assert "scheduler" not in body["failing"]


def test_no_embedded_beat_when_off_or_distributed(settings_options):
    settings_options(enable_scheduler=False)
    assert services.start_embedded_beat() is None
    settings_options(enable_scheduler=True, redis_url="redis://127.0.0.1:6379/0")
    assert services.start_embedded_beat() is None
    assert not services.embedded_beat_started()  # this test process serves nothing
