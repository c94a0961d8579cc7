"""Initiative health: the worst of its last pulse, its linked KPIs and its missed milestones.

`milestone_missed` is the one definition of "missed" (detection reuses it): a milestone is
missed once its due date has ended in the plan's timezone without it being done or descoped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from bot.kpis import Health, worst_health
from storage.models import MilestoneStatus


class MilestoneLike(Protocol):
    due: date
    status: str
    archived: bool


def due_date_ended(due: date, now: datetime, plan_tz: str) -> bool:
    """True once midnight after `due` has passed in the plan's timezone."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(plan_tz)).date() > due


def milestone_missed(milestone: MilestoneLike, now: datetime, plan_tz: str) -> bool:
    """An open (not done, not descoped, not archived) milestone whose due date has ended."""
    return (
        milestone.status == MilestoneStatus.OPEN
        and not milestone.archived
        and due_date_ended(milestone.due, now, plan_tz)
    )


def initiative_health(
    *,
    pulse_status: str | None,
    kpi_healths: Iterable[Health],
    any_milestone_missed: bool,
) -> Health:
    """Worst signal wins; a missed milestone is off track (the date has already gone)."""
    signals: list[Health | str | None] = [pulse_status, *kpi_healths]
    if any_milestone_missed:
        signals.append(Health.OFF_TRACK)
    return worst_health(signals)
