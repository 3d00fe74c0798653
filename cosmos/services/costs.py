"""What runs cost: the price table (``ModelPrice``), pricing a run's usage, and usage totals.

- A run is priced once, when its usage is recorded (the engine's final write, or a pause): the
  price of its provider and model then, from the table. A later price change never rewrites a
  run. A model with no price costs 0 and the run is marked ``cost_unpriced``: no price is guessed.
- ``usage_totals`` is the one selector of totals by agent, caller (API key), day or model: the
  admin, the dashboard and ``GET /api/usage`` all read it. Totals count runs that ended (as the
  API keys' daily quotas do), each with its own tokens: a star's or a workflow's model calls are
  made by its child runs, so the sum over runs never counts a call twice.
- ``tree_usage`` sums a run and every run below it (a star's members, a workflow's steps).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Count, DecimalField, F, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate

from ..models import PRICE_CURRENCY, TERMINAL_STATUSES, ModelPrice, Run

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.000001")
TOKEN_FIELDS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
# The price column of each token count.
PRICE_OF = {
    "input_tokens": "input_per_million",
    "output_tokens": "output_per_million",
    "cache_read_tokens": "cache_read_per_million",
    "cache_write_tokens": "cache_write_per_million",
}
GROUPS = ("agent", "caller", "day", "model")
ZERO = Decimal(0)


def find_price(provider: str, model: str) -> ModelPrice | None:
    """The price of a model: an exact row, else the longest matching prefix row, else None."""
    if not provider or not model:
        return None
    rows = [row for row in ModelPrice.objects.filter(provider=provider) if row.matches(model)]
    if not rows:
        return None
    return max(rows, key=lambda row: (not row.is_prefix, len(row.model)))


def cost_of(usage: Mapping[str, int], price: ModelPrice) -> Decimal:
    total = sum((Decimal(int(usage.get(name) or 0)) * getattr(price, PRICE_OF[name]) for name in TOKEN_FIELDS), ZERO)
    return (total / MILLION).quantize(COST_PLACES, rounding=ROUND_HALF_UP)


def priced_usage(provider: str, model: str, usage: Mapping[str, int]) -> dict[str, Any]:
    """The ``Run`` fields that record this usage: the four token counts, the cost and what priced it.

    Runs inside the run's final transaction (or its pause), so the price is the one of that moment.
    """
    fields: dict[str, Any] = {name: int(usage.get(name) or 0) for name in TOKEN_FIELDS}
    fields["provider"], fields["model"] = provider or "", model or ""
    if not any(fields[name] for name in TOKEN_FIELDS):
        return fields | {"cost": ZERO, "cost_unpriced": False}
    try:
        price = find_price(provider, model)
        cost = None if price is None else cost_of(fields, price)
    except ArithmeticError:  # a price row written around the admin's checks: never fail the run for it
        logger.exception("price of %s:%s unreadable", provider, model)
        cost = None
    if cost is None:
        return fields | {"cost": ZERO, "cost_unpriced": True}
    return fields | {"cost": cost, "cost_unpriced": False}


# --- totals


def _sums() -> dict[str, Any]:
    return {
        "runs": Count("id"),
        **{name: Coalesce(Sum(name), 0) for name in TOKEN_FIELDS},
        "cost": Coalesce(Sum("cost"), Value(ZERO), output_field=DecimalField(max_digits=20, decimal_places=6)),
        "unpriced_runs": Count("id", filter=Q(cost_unpriced=True)),
    }


def ended_runs(since: datetime | None = None, until: datetime | None = None) -> QuerySet[Run]:
    """Runs that ended in [since, until): the runs totals count."""
    runs = Run.objects.filter(status__in=TERMINAL_STATUSES, finished_at__isnull=False)
    if since is not None:
        runs = runs.filter(finished_at__gte=since)
    if until is not None:
        runs = runs.filter(finished_at__lt=until)
    return runs


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _row(values: dict[str, Any], key: Any) -> dict[str, Any]:
    out = {"group": key, "runs": values["runs"]}
    out.update({name: int(values[name] or 0) for name in TOKEN_FIELDS})
    out["total_tokens"] = sum(out[name] for name in TOKEN_FIELDS)
    out["cost"] = Decimal(values["cost"] or 0).quantize(COST_PLACES)
    out["currency"] = PRICE_CURRENCY
    out["unpriced_runs"] = values["unpriced_runs"]
    return out


def usage_totals(
    group: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    callers: Iterable[str] | None = None,
    caller_prefix: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Tokens and cost of the runs that ended in [since, until), grouped by ``group``:

    - ``agent``: agent runs (top-level or a star's member, a workflow's step) by agent id;
    - ``caller``: every run by ``Run.caller`` (an API key is ``key:<prefix>``); ``caller_prefix``
      keeps the callers starting with it, ``callers`` only those;
    - ``day``: every run by the UTC day it ended, oldest first;
    - ``model``: every run that called a model, by ``provider:model``.

    Rows: ``group`` (the id, caller, ISO day or model), ``runs``, the four token counts,
    ``total_tokens``, ``cost`` (Decimal), ``currency`` and ``unpriced_runs``; by cost, highest
    first (days: in order). Raises ValueError for an unknown group.
    """
    if group not in GROUPS:
        raise ValueError(f"Unknown group {group!r}; choose one of {', '.join(GROUPS)}.")
    runs = ended_runs(since, until)
    if callers is not None:
        runs = runs.filter(caller__in=list(callers))
    if caller_prefix is not None:
        runs = runs.filter(caller__startswith=caller_prefix)
    if group == "agent":
        runs, key = runs.filter(kind="agent"), "target"
    elif group == "caller":
        key = "caller"
    elif group == "day":
        runs, key = runs.annotate(day=TruncDate("finished_at", tzinfo=UTC)), "day"
    else:
        runs = runs.exclude(model="").annotate(model_key=_model_key())
        key = "model_key"
    rows = runs.order_by().values(key).annotate(**_sums())
    rows = rows.order_by(key) if group == "day" else rows.order_by("-cost", key)
    if limit is not None:
        rows = rows[:limit]
    return [_row(values, _group_value(group, values[key])) for values in rows]


def sum_rows(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Rows of ``usage_totals`` added up (``group``: "total")."""
    rows = list(rows)
    total: dict[str, Any] = {"group": "total"}
    for name in ("runs", *TOKEN_FIELDS, "total_tokens", "unpriced_runs"):
        total[name] = sum(row[name] for row in rows)
    total["cost"] = sum((row["cost"] for row in rows), ZERO)
    total["currency"] = PRICE_CURRENCY
    return total


def _model_key():
    from django.db.models.functions import Concat

    return Concat(F("provider"), Value(":"), F("model"))


def _group_value(group: str, value: Any) -> Any:
    if group == "day" and value is not None:
        return value.isoformat() if isinstance(value, date) else str(value)
    return value


def tree_usage(runs: Iterable[Run], *, childless: bool = False) -> dict[str, dict[str, Any]]:
    """For each run: its own figures plus those of every run below it (members, steps, their
    children), read level by level for the whole batch (a page of runs: one query a level below it).
    ``childless``: the caller knows these runs have no children (no query)."""
    fields = ("id", "parent_id", *TOKEN_FIELDS, "cost")
    rows = [tuple(getattr(run, "pk" if name == "id" else name) for name in fields) for run in runs]
    roots = {str(row[0]) for row in rows}
    nodes: dict[str, tuple] = {}  # run id -> (parent id, its own figures)
    while rows:
        fresh = [row for row in rows if str(row[0]) not in nodes]
        for row in fresh:
            nodes[str(row[0])] = (str(row[1]) if row[1] else None, row[2:])
        frontier = [str(row[0]) for row in fresh] if not (childless and len(nodes) == len(roots)) else []
        rows = list(Run.objects.filter(parent_id__in=frontier).values_list(*fields)) if frontier else []
    owners: dict[str, list[str]] = {}

    def owners_of(run_id: str) -> list[str]:  # the batch's runs this run is (under), itself included
        found = owners.get(run_id)
        if found is None:
            parent = nodes[run_id][0]
            found = ([run_id] if run_id in roots else []) + (owners_of(parent) if parent in nodes else [])
            owners[run_id] = found
        return found

    totals = {root: {name: 0 for name in TOKEN_FIELDS} | {"cost": ZERO, "runs": 0} for root in roots if root in nodes}
    for run_id, (_, figures) in nodes.items():
        for owner in owners_of(run_id):
            total = totals[owner]
            for name, value in zip(TOKEN_FIELDS, figures[:4], strict=True):
                total[name] += value
            total["cost"] += figures[4]
            total["runs"] += 1
    for total in totals.values():
        total["total_tokens"] = sum(total[name] for name in TOKEN_FIELDS)
        total["cost"] = total["cost"].quantize(COST_PLACES)
    return totals
