"""When a pulse is due: each initiative's cron cadence, read in its owner's own timezone."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

from croniter import croniter

from bot.errors import ConfigurationError
from bot.problems import ProblemCode, problem
from bot.settings import Settings
from bot.timezones import local_date, person_zone
from storage.models import Holiday, Initiative, InitiativeStatus, Person, PlanSettings

log = logging.getLogger(__name__)

# A wall-clock window wide enough to cover any UTC offset jump (DST moves clocks by 1 h at most).
_SLACK = timedelta(hours=3)


@dataclass(frozen=True)
class Period:
    """One pulse period: from a cron fire until the next fire."""

    start: datetime  # aware UTC
    end: datetime  # aware UTC; reminders and escalation must happen before this
    wall_start: datetime  # the fire in the owner's wall-clock time (naive), e.g. Monday 09:00

    @cached_property
    def key(self) -> str:
        """`pulse_request.period`: the fire's local wall time, e.g. `2027-01-04T09:00`.

        Not the UTC instant: when an owner's timezone changes mid-week (the first directory sync
        after an import fills it in, or they move), "Monday 09:00" is still the same period and
        the unique key (initiative, period) stops a second prompt for it.
        """
        return self.wall_start.strftime("%Y-%m-%dT%H:%M")


@lru_cache(maxsize=1024)
def valid_cron(expression: str) -> bool:
    """Five fields, as the plan file promises (croniter would also take a sixth, for seconds)."""
    return len(expression.split()) == 5 and croniter.is_valid(expression)


def _localize(wall: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: a skipped wall time (spring forward) lands just after the gap, a repeated one
    # (fall back) fires on its first occurrence only, so every wall-clock fire happens once.
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


@lru_cache(maxsize=4096)
def _period_cached(expression: str, tz_name: str, now: datetime) -> Period:
    tz = ZoneInfo(tz_name)
    # Iterate in naive local wall time so "09:00 every Monday" stays 09:00 across DST changes.
    wall_now = now.astimezone(tz).replace(tzinfo=None)
    backwards = croniter(expression, wall_now + _SLACK)
    wall_start = backwards.get_prev(datetime)
    while _localize(wall_start, tz) > now:
        wall_start = backwards.get_prev(datetime)
    start = _localize(wall_start, tz)
    forwards = croniter(expression, wall_now - _SLACK)
    end = _localize(forwards.get_next(datetime), tz)
    while end <= now:
        end = _localize(forwards.get_next(datetime), tz)
    return Period(start=start, end=end, wall_start=wall_start)


def current_period(expression: str, tz: ZoneInfo, now: datetime) -> Period:
    """The period containing `now`: the latest fire at or before now, and the next one after it."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _period_cached(expression, tz.key, now.astimezone(UTC))


def cadence(initiative: Initiative, plan: PlanSettings) -> str | None:
    """The initiative's own cron, else the plan default; None when neither is usable."""
    return _cadence(initiative.pulse, plan.default_pulse, initiative.key)


def _cadence(own: str | None, default: str | None, initiative_key: str) -> str | None:
    for expression in (own, default):
        if expression and valid_cron(expression):
            return expression
        if expression:
            log.warning("Initiative %s: ignoring invalid cadence %r", initiative_key, expression)
    return None


def is_away(owner: Person, day: date) -> bool:
    """Out of office on that day (both ends inclusive; an open end means a single bound)."""
    return _away_on(owner.away_from, owner.away_until, day)


def _away_on(away_from: date | None, away_until: date | None, day: date) -> bool:
    if away_from is None and away_until is None:
        return False
    after_start = away_from is None or away_from <= day
    before_end = away_until is None or day <= away_until
    return after_start and before_end


def is_holiday(holidays: list[Holiday], day: date) -> bool:
    return any(holiday.start <= day <= holiday.end for holiday in holidays)


def due_period(
    initiative: Initiative,
    owner: Person,
    plan: PlanSettings,
    holidays: list[Holiday],
    now: datetime,
    timing: PromptTiming | None = None,
) -> Period | None:
    """The period whose pulse this initiative's owner should get at `now`, or None for no pulse.

    Only the current period counts: after downtime the owner gets this period's prompt, never a
    burst of the periods that were missed. A period is never prompted when it began before the
    initiative was created or resumed, before the owner's Slack account was linked, while the
    owner was away or on a plan holiday; and a late prompt waits for the owner's working hours
    (see `PromptTiming`).
    """
    if initiative.archived or initiative.status != InitiativeStatus.ACTIVE:
        return None
    if not owner.active or not owner.slack_id:
        return None
    return DueCalendar(plan, holidays, now, timing).due(
        initiative_key=initiative.key,
        pulse=initiative.pulse,
        active_since=initiative.active_since,
        owner_tz=owner.tz,
        slack_linked_at=owner.slack_linked_at,
        away_from=owner.away_from,
        away_until=owner.away_until,
    )


@dataclass(frozen=True)
class _Slot:
    """What every initiative with the same cadence, in the same zone, shares at one moment."""

    period: Period
    first_day: date  # the period's first day, in the owner's zone
    open: bool  # not a plan holiday, and the prompt timing allows a prompt now


class DueCalendar:
    """`due_period` for many live initiatives at one `now`, from their plain column values.

    Thousands of initiatives share a handful of cadences and timezones: each (cadence, zone)
    slot is worked out once, and only what differs per initiative or owner (active since, Slack
    link, away dates) is checked for each. The caller has already left out archived or paused
    initiatives and inactive owners, as `due_period` does.
    """

    def __init__(
        self,
        plan: PlanSettings,
        holidays: list[Holiday],
        now: datetime,
        timing: PromptTiming | None = None,
    ) -> None:
        self._default_pulse = plan.default_pulse
        self._plan_tz = plan.timezone
        self._holidays = holidays
        self._now = now
        self._timing = timing or PromptTiming.default()
        self._slots: dict[tuple[str, str], _Slot] = {}

    def due(
        self,
        *,
        initiative_key: str,
        pulse: str | None,
        active_since: datetime,
        owner_tz: str | None,
        slack_linked_at: datetime | None,
        away_from: date | None,
        away_until: date | None,
    ) -> Period | None:
        expression = _cadence(pulse, self._default_pulse, initiative_key)
        if expression is None:
            return None
        slot = self._slot(expression, person_zone(owner_tz, self._plan_tz))
        period = slot.period
        if period.start < active_since:
            return None  # the owner could not have been asked at that fire: wait for the next
        if slack_linked_at is not None and period.start < slack_linked_at:
            return None
        if not slot.open or _away_on(away_from, away_until, slot.first_day):
            return None
        return period

    def _slot(self, expression: str, tz: ZoneInfo) -> _Slot:
        found = self._slots.get((expression, tz.key))
        if found is None:
            period = current_period(expression, tz, self._now)
            first_day = local_date(period.start, tz)
            found = _Slot(
                period=period,
                first_day=first_day,
                open=not is_holiday(self._holidays, first_day)
                and self._timing.may_prompt(period, tz, self._now),
            )
            self._slots[(expression, tz.key)] = found
        return found


class ScheduleProblem(ProblemCode):
    """What can be wrong with the WORKING_HOURS and WORKING_DAYS settings."""

    HOURS_NOT_A_RANGE = "schedule.hours_not_a_range"  # hours
    HOURS_END_FIRST = "schedule.hours_end_first"  # hours
    DAYS_NOT_A_LIST = "schedule.days_not_a_list"  # days


_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class WorkingHours:
    """When a person may be nudged: weekdays (0 = Monday) and a local start/end time."""

    days: frozenset[int]
    start: time
    end: time

    @classmethod
    def parse(cls, hours: str, days: str) -> WorkingHours:
        """`09:00-18:00` and `mon-fri` (or a list such as `mon,wed,fri-sun`)."""
        try:
            start_text, end_text = (part.strip() for part in hours.split("-"))
            start, end = time.fromisoformat(start_text), time.fromisoformat(end_text)
        except ValueError:
            raise ConfigurationError(
                problem(ScheduleProblem.HOURS_NOT_A_RANGE, hours=hours)
            ) from None
        if start >= end:
            raise ConfigurationError(problem(ScheduleProblem.HOURS_END_FIRST, hours=hours))
        chosen: set[int] = set()
        for part in days.lower().replace(" ", "").split(","):
            first, _, last = part.partition("-")
            if first not in _DAYS or (last and last not in _DAYS):
                raise ConfigurationError(problem(ScheduleProblem.DAYS_NOT_A_LIST, days=days))
            a, b = _DAYS.index(first), _DAYS.index(last or first)
            chosen.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        return cls(days=frozenset(chosen), start=start, end=end)

    def contains(self, tz: ZoneInfo, now: datetime) -> bool:
        local = now.astimezone(tz)
        return local.weekday() in self.days and self.start <= local.time() < self.end


DEFAULT_GRACE = timedelta(minutes=60)


@dataclass(frozen=True)
class PromptTiming:
    """When a due prompt may go out: on time within `grace` of its fire, later only at work.

    A late prompt (downtime, a backlog) never lands at 23:58 or on a Saturday: it waits for the
    owner's working hours, and is dropped once less than a quarter of its period remains, since
    the next prompt is then close (one prompt, not two in a day).
    """

    grace: timedelta
    working: WorkingHours

    @classmethod
    def default(cls) -> PromptTiming:
        return cls(grace=DEFAULT_GRACE, working=WorkingHours.parse("09:00-18:00", "mon-fri"))

    @classmethod
    def from_settings(cls, settings: Settings) -> PromptTiming:
        return cls(
            grace=timedelta(minutes=settings.pulse_grace_minutes),
            working=WorkingHours.parse(settings.working_hours, settings.working_days),
        )

    def may_prompt(self, period: Period, tz: ZoneInfo, now: datetime) -> bool:
        if now - period.start <= self.grace:
            return True
        if (period.end - now) * 4 < period.end - period.start:
            return False
        return self.working.contains(tz, now)
