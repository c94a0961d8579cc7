"""Burn-up and forecast: how much of a milestone's linked work is closed, and when it will finish.

The forecast divides the open items by the closing rate of the last `PACE_WEEKS` weeks. Work
open with no change for `QUIET_DAYS` days is quiet. Pure functions of items and `now`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol
from urllib.parse import quote

from bot.work.links import ItemLike, Link

PACE_WEEKS = 3
QUIET_DAYS = 14


class WorkItemLike(ItemLike, Protocol):
    @property
    def closed(self) -> bool: ...
    @property
    def closed_at(self) -> datetime | None: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def url(self) -> str | None: ...


@dataclass(frozen=True)
class LinkView:
    """One link as /plan shows it: its text and the tracker's own view of it."""

    text: str
    url: str | None


@dataclass(frozen=True)
class Burnup:
    closed: int
    total: int
    last_change: datetime | None
    closed_lately: int  # in the last PACE_WEEKS weeks
    forecast: date | None  # None: open work and nothing closed lately
    quiet_days: int | None  # days since the last change, when open work is quiet
    links: tuple[LinkView, ...]

    def days_late(self, due: date) -> int | None:
        """Days the forecast finish is after `due` (None when it is not, or cannot be told)."""
        if self.forecast is None or self.forecast <= due:
            return None
        return (self.forecast - due).days


_SITE = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")


def _jira_site(items: Iterable[WorkItemLike]) -> str | None:
    """The Jira site the items came from (only a plain https origin: it goes into a link)."""
    for item in items:
        if item.tracker == "jira" and item.url and "/browse/" in item.url:
            site = item.url.split("/browse/", 1)[0]
            if _SITE.fullmatch(site):
                return site
    return None


def _view(link: Link, items: Sequence[WorkItemLike]) -> LinkView:
    text = f"{link.project} {link.selector} {link.name}"
    if link.tracker == "github":
        return LinkView(text, link.url())
    site = _jira_site(i for i in items if i.project == link.project)
    if site is None:
        return LinkView(text, None)
    if link.selector == "epic":
        jql = f"parent = {link.name}"
    else:
        jql = f'project = {link.project} AND labels = "{link.name}"'
    return LinkView(text, f"{site}/issues/?jql={quote(jql)}")


def burnup(
    links: Sequence[Link], items: Sequence[WorkItemLike], now: datetime, today: date
) -> Burnup:
    """The linked work among `items` (each item counted once, whatever links take it)."""
    mine = [item for item in items if any(link.takes(item) for link in links)]
    closed = [item for item in mine if item.closed]
    since = now - timedelta(weeks=PACE_WEEKS)
    lately = sum(1 for item in closed if item.closed_at is not None and item.closed_at >= since)
    remaining = len(mine) - len(closed)
    if remaining == 0:
        forecast: date | None = today if mine else None
    elif lately:
        per_day = lately / (PACE_WEEKS * 7)
        forecast = today + timedelta(days=math.ceil(remaining / per_day))
    else:
        forecast = None
    last = max((item.updated_at for item in mine), default=None)
    quiet = None
    if remaining and last is not None and now - last >= timedelta(days=QUIET_DAYS):
        quiet = (now - last).days
    return Burnup(
        closed=len(closed),
        total=len(mine),
        last_change=last,
        closed_lately=lately,
        forecast=forecast,
        quiet_days=quiet,
        links=tuple(_view(link, mine) for link in links),
    )
