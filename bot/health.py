"""Initiative health: the worst of its last pulse, its linked KPIs and its missed milestones.

`milestone_missed` is the one definition of "missed" (detection reuses it): a milestone is
missed once its due date has ended in the plan's timezone without it being done or descoped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Protocol

from bot.kpis import Health, worst_health
from bot.timezones import local_date, plan_zone
from storage.models import DependencyState, MilestoneStatus


class MilestoneLike(Protocol):
    due: date
    status: str
    archived: bool


class DependencyLike(Protocol):
    needed_by: date
    state: str
    archived: bool


def plan_today(now: datetime, plan_tz: str | None) -> date:
    """Today in the plan's timezone: the day deadlines are counted against."""
    return local_date(now, plan_zone(plan_tz))


def due_date_ended(due: date, now: datetime, plan_tz: str | None) -> bool:
    """True once midnight after `due` has passed in the plan's timezone."""
    return plan_today(now, plan_tz) > due


def milestone_missed(milestone: MilestoneLike, now: datetime, plan_tz: str | None) -> bool:
    """An open (not done, not descoped, not archived) milestone whose due date has ended."""
    return (
        milestone.status == MilestoneStatus.OPEN
        and not milestone.archived
        and due_date_ended(milestone.due, now, plan_tz)
    )


def dependency_late(dependency: DependencyLike, now: datetime, plan_tz: str | None) -> bool:
    """Not delivered (nor archived) once the day it was needed by has ended in the plan's timezone."""
    return (
        dependency.state != DependencyState.DELIVERED
        and not dependency.archived
        and due_date_ended(dependency.needed_by, now, plan_tz)
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
