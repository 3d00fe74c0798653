"""Per-API-key quotas: requests per minute, concurrent runs, tokens per day and cost per day.

- **Requests per minute** is a fixed window that opens with the key's first request and lasts
  60 seconds. Distributed mode counts in Redis (one Lua script: check, INCR and PEXPIRE at once,
  so every API process shares the count); embedded mode, which is one process, counts in memory.
  A refused request is not counted. Retry-After is the time left in the window.
- **Concurrent runs** counts the key's queued and running top-level runs in the database (the
  truth, which survives crashes). The check runs inside the transaction that inserts the run,
  after locking the key's row, so a burst of parallel requests cannot overshoot the limit.
- **Tokens per day** sums the input and output tokens of the key's runs (child runs included:
  a star's or a workflow's model calls are made by its child runs) that finished since 00:00 UTC.
  A run in progress is never cut off: its tokens count once it finishes, and only new runs are
  refused. Retry-After is the time to the next UTC midnight. Tokens are input, cached input
  (read from and written to the prompt cache) and output.
- **Cost per day** works the same way on the runs' cost (USD, priced from the model price
  table when each run's usage was recorded, ``cosmos.services.costs``).

Runs carry their key as ``Run.caller`` (``key:<prefix>``). The run checks are registered with
``cosmos.services.runs`` (see ``InterfacesConfig.ready``), so they hold on every entry point that
starts a run: REST, A2A, AG-UI, websockets, the dashboard.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import (
    BigIntegerField,
    Count,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Concat
from rest_framework import exceptions

from cosmos.models import EXECUTING_STATUSES, PRICE_CURRENCY, TERMINAL_STATUSES, Run
from cosmos.services import costs
from cosmos.services.errors import ServiceError
from interfaces.keys.models import APIKey

logger = logging.getLogger(__name__)

REQUESTS_PER_MINUTE = "requests_per_minute"
CONCURRENT_RUNS = "concurrent_runs"
TOKENS_PER_DAY = "tokens_per_day"
COST_PER_DAY = "cost_per_day"
WINDOW_SECONDS = 60
# A run slot frees when one of the key's runs ends, which nobody can predict: retry soon.
CONCURRENT_RETRY_AFTER_SECONDS = 5
KEY_CALLER_PREFIX = "key:"


class QuotaExceeded(ServiceError, exceptions.APIException):
    """429 naming the quota, its limit and when to retry (also the ``Retry-After`` header).

    An ``APIException`` as well, so that DRF's authentication stops cleanly when the request
    counter refuses a key (it only catches those); every other edge handles it as a ServiceError.
    """

    status = status_code = 429
    code = "quota_exceeded"

    def __init__(self, quota: str, limit: int | str, retry_after: int, message: str) -> None:
        self.quota = quota
        self.limit = limit
        self.retry_after = max(1, int(retry_after))
        details = {"quota": quota, "limit": limit, "retry_after": self.retry_after}
        ServiceError.__init__(self, message, details=details)
        self.detail = message


def _ceil_seconds(seconds: float) -> int:
    return max(1, math.ceil(seconds))


# --- requests per minute


@dataclass(frozen=True)
class Window:
    """The key's current window: requests counted in it, and seconds until it closes (0: none open)."""

    count: int
    resets_in: float


class LocalWindows:
    """Embedded mode: one process, so a lock and a dict are the whole story."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # counter id -> (window end, count)

    def hit(self, counter_id: str, limit: int | None) -> tuple[bool, Window]:
        now = time.monotonic()
        with self._lock:
            if len(self._windows) > 10_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] > now}
            ends, count = self._windows.get(counter_id, (0.0, 0))
            if ends <= now:
                ends, count = now + WINDOW_SECONDS, 0
            if limit is not None and count >= limit:
                return False, Window(count, ends - now)
            self._windows[counter_id] = (ends, count + 1)
            return True, Window(count + 1, ends - now)

    def peek(self, counter_id: str) -> Window:
        now = time.monotonic()
        with self._lock:
            ends, count = self._windows.get(counter_id, (0.0, 0))
        return Window(count, ends - now) if ends > now else Window(0, 0)


# KEYS[1]: the key's counter. ARGV[1]: the limit (-1: none). ARGV[2]: the window in ms.
# Returns {allowed, count, ms left}. Refused requests are not counted.
HIT_SCRIPT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local limit = tonumber(ARGV[1])
if limit >= 0 and count >= limit then
  return {0, count, redis.call('PTTL', KEYS[1])}
end
count = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {1, count, ttl}
"""


class RedisWindows:
    """Distributed mode: every API process counts in the same Redis key.

    A Redis outage lets requests through (logged): the limit is a guard, not worth an outage.
    """

    def __init__(self, url: str) -> None:
        import redis

        self._errors = (redis.RedisError, OSError)
        self._client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._hit = self._client.register_script(HIT_SCRIPT)

    @staticmethod
    def _key(counter_id: str) -> str:
        return f"asteros:quota:rpm:{counter_id}"

    def hit(self, counter_id: str, limit: int | None) -> tuple[bool, Window]:
        try:
            allowed, count, ttl = self._hit(
                keys=[self._key(counter_id)], args=[-1 if limit is None else limit, WINDOW_SECONDS * 1000]
            )
        except self._errors as exc:
            logger.warning("request quota not counted, Redis failed: %s", exc.__class__.__name__)
            return True, Window(0, 0)
        return bool(allowed), Window(int(count), max(0, int(ttl)) / 1000)

    def peek(self, counter_id: str) -> Window | None:
        try:
            pipeline = self._client.pipeline(transaction=True)
            pipeline.get(self._key(counter_id))
            pipeline.pttl(self._key(counter_id))
            count, ttl = pipeline.execute()
        except self._errors as exc:
            logger.warning("request quota not read, Redis failed: %s", exc.__class__.__name__)
            return None
        if count is None or ttl is None or ttl < 0:
            return Window(0, 0)
        return Window(int(count), ttl / 1000)


_local_windows = LocalWindows()


@cache
def _redis_windows(url: str) -> RedisWindows:
    return RedisWindows(url)


def request_windows() -> LocalWindows | RedisWindows:
    url = settings.ASTEROS.redis_url
    return _redis_windows(url) if url else _local_windows


def count_request(counter_id: str, limit: int | None) -> Window:
    """Count one request of a key (``counter_id``: its prefix); QuotaExceeded past ``limit``."""
    allowed, window = request_windows().hit(counter_id, limit)
    if not allowed:
        assert limit is not None
        retry_after = _ceil_seconds(window.resets_in)
        raise QuotaExceeded(
            REQUESTS_PER_MINUTE,
            limit,
            retry_after,
            f"This API key may make {limit} requests per minute; retry in {retry_after} s.",
        )
    return window


# --- runs: concurrency and tokens, from the database


def key_prefix_of(caller: str) -> str | None:
    """The key prefix in a ``Run.caller`` like ``key:1a2b3c4d``; None for users and anonymous."""
    if not caller.startswith(KEY_CALLER_PREFIX):
        return None
    return caller[len(KEY_CALLER_PREFIX) :] or None


RUN_TOKENS = F("input_tokens") + F("cache_read_tokens") + F("cache_write_tokens") + F("output_tokens")


def _active_runs_of(caller) -> QuerySet[Run]:
    return Run.objects.filter(caller=caller, status__in=EXECUTING_STATUSES, parent__isnull=True)


def _runs_finished_today(caller, now: datetime | None = None) -> QuerySet[Run]:
    return Run.objects.filter(caller=caller, status__in=TERMINAL_STATUSES, finished_at__gte=utc_midnight(now))


def active_runs(caller: str) -> int:
    return _active_runs_of(caller).count()


def utc_midnight(now: datetime | None = None) -> datetime:
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def next_utc_midnight(now: datetime | None = None) -> datetime:
    return utc_midnight(now) + timedelta(days=1)


def tokens_today(caller: str, now: datetime | None = None) -> int:
    """Tokens of the caller's runs that finished since 00:00 UTC (children included)."""
    total = _runs_finished_today(caller, now).aggregate(total=Sum(RUN_TOKENS))["total"]
    return int(total or 0)


def cost_today(caller: str, now: datetime | None = None) -> Decimal:
    """What the caller's runs that finished since 00:00 UTC cost (children included)."""
    total = _runs_finished_today(caller, now).aggregate(total=Sum("cost"))["total"]
    return Decimal(total or 0)


def with_usage(keys: QuerySet[APIKey]) -> QuerySet[APIKey]:
    """Keys annotated with ``active_run_count``, ``tokens_today_count`` and ``cost_today_amount``, in the same query
    (the admin's list: not two queries per key)."""
    caller = Concat(Value(KEY_CALLER_PREFIX), OuterRef("prefix"))
    active = _active_runs_of(caller).order_by().values("caller").annotate(n=Count("id")).values("n")
    tokens = _runs_finished_today(caller).order_by().values("caller").annotate(n=Sum(RUN_TOKENS)).values("n")
    cost = _runs_finished_today(caller).order_by().values("caller").annotate(n=Sum("cost")).values("n")
    money = DecimalField(max_digits=20, decimal_places=6)
    return keys.annotate(
        active_run_count=Coalesce(Subquery(active, output_field=IntegerField()), 0),
        tokens_today_count=Coalesce(Subquery(tokens, output_field=BigIntegerField()), 0),
        cost_today_amount=Coalesce(Subquery(cost, output_field=money), Value(Decimal(0)), output_field=money),
    )


LIMIT_FIELDS = ("max_concurrent_runs", "tokens_per_day", "cost_per_day")


def _seconds_to_midnight() -> int:
    return _ceil_seconds((next_utc_midnight() - datetime.now(UTC)).total_seconds())


def admit_run(caller: str) -> None:
    """The admission check of a new top-level run (``cosmos.services.runs.register_admission_check``).

    Runs inside ``start_run``'s transaction. Only a key with run limits takes its row lock: in
    PostgreSQL ``SELECT ... FOR UPDATE`` makes the key's parallel run requests count one after
    the other; SQLite's IMMEDIATE transactions already admit one writer at a time.
    """
    prefix = key_prefix_of(caller)
    if prefix is None:
        return
    limits = APIKey.objects.filter(prefix=prefix).values(*LIMIT_FIELDS).first()
    if limits is None or all(limits[name] is None for name in LIMIT_FIELDS):
        return
    if transaction.get_autocommit():  # called outside start_run: the lock would not hold
        raise RuntimeError("admit_run must run inside the transaction that creates the run")
    limits = APIKey.objects.select_for_update().filter(prefix=prefix).values(*LIMIT_FIELDS).first() or limits
    # The daily ones first: when several are exhausted, the longer wait is the one worth telling.
    budget = limits["tokens_per_day"]
    if budget is not None and tokens_today(caller) >= budget:
        raise QuotaExceeded(
            TOKENS_PER_DAY,
            budget,
            _seconds_to_midnight(),
            f"This API key used its {budget} tokens for today (UTC); new runs start again at 00:00 UTC.",
        )
    spend = limits["cost_per_day"]
    if spend is not None and cost_today(caller) >= spend:
        raise QuotaExceeded(
            COST_PER_DAY,
            str(spend),
            _seconds_to_midnight(),
            f"This API key spent its {spend} {PRICE_CURRENCY} for today (UTC); new runs start again at 00:00 UTC.",
        )
    most = limits["max_concurrent_runs"]
    if most is not None and active_runs(caller) >= most:
        raise QuotaExceeded(
            CONCURRENT_RUNS,
            most,
            CONCURRENT_RETRY_AFTER_SECONDS,
            f"This API key may have {most} runs queued or running at once; wait for one to finish.",
        )


# --- usage


def _quota(limit: Any, used: Any, resets_in: float | None, now: datetime) -> dict[str, Any]:
    remaining = None if limit is None or used is None else max(0, limit - used)
    resets_at = None if not resets_in else now + timedelta(seconds=resets_in)
    return {
        "limit": limit,
        "used": used,
        "remaining": remaining,
        "resets_at": resets_at,
        "resets_in_seconds": _ceil_seconds(resets_in) if resets_in else None,
    }


def usage(
    counter_id: str,
    caller: str,
    *,
    requests_per_minute: int | None = None,
    max_concurrent_runs: int | None = None,
    tokens_per_day: int | None = None,
    cost_per_day: Decimal | None = None,
) -> dict[str, dict[str, Any]]:
    """Each quota of a key: its limit (None: unlimited), what is used, and when it resets.

    ``concurrent_runs`` has no reset time: a slot frees when one of the key's runs ends.
    """
    now = datetime.now(UTC)
    window = request_windows().peek(counter_id)
    return {
        REQUESTS_PER_MINUTE: _quota(
            requests_per_minute, None if window is None else window.count, window and window.resets_in, now
        ),
        CONCURRENT_RUNS: _quota(max_concurrent_runs, active_runs(caller), None, now),
        TOKENS_PER_DAY: _quota(
            tokens_per_day, tokens_today(caller, now), (next_utc_midnight(now) - now).total_seconds(), now
        ),
        COST_PER_DAY: _quota(cost_per_day, cost_today(caller, now), (next_utc_midnight(now) - now).total_seconds(), now)
        | {"currency": PRICE_CURRENCY},
    }


def key_usage(key: APIKey) -> dict[str, dict[str, Any]]:
    return usage(
        key.prefix,
        key.caller,
        requests_per_minute=key.requests_per_minute,
        max_concurrent_runs=key.max_concurrent_runs,
        tokens_per_day=key.tokens_per_day,
        cost_per_day=key.cost_per_day,
    )


# --- totals by key


def usage_by_key(since: datetime | None = None, until: datetime | None = None) -> list[dict[str, Any]]:
    """``cosmos.services.costs.usage_totals`` of the runs API keys started, by key: each row's
    ``group`` is the key's prefix, with its ``name`` (empty for the ASTEROS_API_KEY setting's key)."""
    rows = costs.usage_totals("caller", since=since, until=until, caller_prefix=KEY_CALLER_PREFIX)
    prefixes = [key_prefix_of(row["group"]) for row in rows]
    names = dict(APIKey.objects.filter(prefix__in=[p for p in prefixes if p]).values_list("prefix", "name"))
    return [row | {"group": prefix, "name": names.get(prefix, "")} for row, prefix in zip(rows, prefixes, strict=True)]
