"""The one way to turn a stored timezone name into a zone: unknown or empty names fall back, logged."""

from __future__ import annotations

import logging
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

UTC_ZONE = ZoneInfo("UTC")


@lru_cache(maxsize=512)
def _known(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("Unknown timezone %r; falling back", name)
        return None


def zone(*names: str | None) -> ZoneInfo:
    """The first of `names` that is a real IANA zone, else UTC: a bad name never stops a rule."""
    for name in names:
        if name:
            found = _known(name)
            if found is not None:
                return found
    return UTC_ZONE


def person_zone(person_tz: str | None, plan_tz: str | None) -> ZoneInfo:
    """A person's Slack timezone, else the plan's (Slack may not have been asked yet), else UTC."""
    return zone(person_tz, plan_tz)


def plan_zone(plan_tz: str | None) -> ZoneInfo:
    """The plan's timezone, where deadlines end at midnight; UTC when it is unusable."""
    return zone(plan_tz)


def local_date(now: datetime, tz: ZoneInfo) -> date:
    """The calendar day at `now` in `tz` (`now` must be aware: the clock is read at the edge)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(tz).date()
