"""KPI rules: the expected trajectory, health against tolerances, sparklines and reading age.

Stable API (the demo and detection call these): `expected_value`, `shortfall_percent`,
`kpi_health`, `health_threshold`, `sparkline`, `reading_age_days`, `worst_health`, and the
`Health` enum.
Everything takes the day or instant as a parameter; nothing here reads the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from enum import StrEnum
from typing import Protocol

from storage.models import Direction

SPARK_CHARS = "▁▂▃▄▅▆▇█"


class Health(StrEnum):
    """Health of a KPI or an initiative; values match `PulseStatus` so the two compare directly."""

    NO_DATA = "no_data"
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    OFF_TRACK = "off_track"


# Worst wins when combining signals; "no data" is never worse than a real signal.
_SEVERITY = {Health.NO_DATA: 0, Health.ON_TRACK: 1, Health.AT_RISK: 2, Health.OFF_TRACK: 3}


class KpiLike(Protocol):
    """The KPI fields the rules read (a `storage.models.Kpi` or any row with these attributes)."""

    baseline: float
    target: float
    direction: str
    start: date
    due: date
    amber_tolerance: float
    red_tolerance: float


def expected_value(kpi: KpiLike, day: date) -> float:
    """The value the baseline→target line expects on `day`: baseline before start, target after due."""
    if day <= kpi.start or kpi.due <= kpi.start:
        return kpi.baseline if day < kpi.due else kpi.target
    if day >= kpi.due:
        return kpi.target
    elapsed = (day - kpi.start).days / (kpi.due - kpi.start).days
    return kpi.baseline + (kpi.target - kpi.baseline) * elapsed


def shortfall_percent(kpi: KpiLike, value: float, day: date) -> float:
    """How far `value` is behind today's expected value, as a percentage of |target - baseline|.

    Positive means behind (below the line for an "up" KPI, above it for a "down" KPI); zero or
    negative means on or ahead of the line. A KPI whose target equals its baseline has no span to
    measure against, so any shortfall counts as 100 % (it can only be held, not approached).
    """
    expected = expected_value(kpi, day)
    behind = expected - value if kpi.direction != Direction.DOWN else value - expected
    span = abs(kpi.target - kpi.baseline)
    if span == 0:
        return 100.0 if behind > 0 else 0.0
    return behind / span * 100.0


def health_threshold(kpi: KpiLike, percent_behind: float, day: date) -> float:
    """The value that is exactly `percent_behind` % behind `day`'s expected value.

    The inverse of `shortfall_percent`: with `kpi.amber_tolerance` it is where on track turns
    at risk, with `kpi.red_tolerance` where at risk turns off track (charts draw these bands).
    A KPI whose target equals its baseline turns off track on any shortfall: its thresholds are
    the expected value itself.
    """
    expected = expected_value(kpi, day)
    span = abs(kpi.target - kpi.baseline)
    behind_by = percent_behind / 100.0 * span
    return expected + behind_by if kpi.direction == Direction.DOWN else expected - behind_by


def kpi_health(kpi: KpiLike, latest_value: float | None, day: date) -> Health:
    """On track up to `amber_tolerance` % behind, at risk up to `red_tolerance` %, off track beyond."""
    if latest_value is None:
        return Health.NO_DATA
    behind = shortfall_percent(kpi, latest_value, day)
    if behind > kpi.red_tolerance:
        return Health.OFF_TRACK
    if behind > kpi.amber_tolerance:
        return Health.AT_RISK
    return Health.ON_TRACK


def reading_overdue(*, as_of: date | None, start: date, reading_every_days: int, day: date) -> bool:
    """No reading for more than `reading_every_days` (counted from `start` when there is none)."""
    return (day - (as_of or start)).days > reading_every_days


def kpi_off_track(
    kpi: KpiLike, *, value: float | None, as_of: date | None, reading_every_days: int, day: date
) -> bool:
    """Off track: beyond the red tolerance of its trajectory, or its reading overdue.

    Detection alerts on this; the digest charts these KPIs.
    """
    overdue = reading_overdue(
        as_of=as_of, start=kpi.start, reading_every_days=reading_every_days, day=day
    )
    return overdue or (value is not None and kpi_health(kpi, value, day) == Health.OFF_TRACK)


def worst_health(signals: Iterable[Health | str | None]) -> Health:
    """The worst of several signals (pulse status, KPI health...); "no data" when there is none."""
    worst = Health.NO_DATA
    for signal in signals:
        if signal is None:
            continue
        health = Health(signal)
        if _SEVERITY[health] > _SEVERITY[worst]:
            worst = health
    return worst


def sparkline(values: Sequence[float]) -> str:
    """Oldest-to-newest values as ▁▂▃▄▅▆▇█, scaled between their own minimum and maximum."""
    if not values:
        return ""
    low, high = min(values), max(values)
    if high == low:
        # A flat series says "steady": draw it mid-height rather than on the floor.
        return SPARK_CHARS[3] * len(values)
    top = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[round((v - low) / (high - low) * top)] for v in values)


def reading_age_days(as_of: date | None, day: date) -> int | None:
    """Whole days since the reading's as-of date (0 today); None when there is no reading."""
    if as_of is None:
        return None
    return max((day - as_of).days, 0)
