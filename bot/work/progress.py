"""Each milestone's burn-up, from the work items its links take in (what /plan, pulses, the digest
and detection show)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime

from sqlmodel import Session

from bot.work.burnup import Burnup, burnup
from bot.work.links import Link
from bot.work.payloads import GITHUB
from storage import work as queries
from storage.models import Milestone


def milestone_burnups(
    session: Session, milestones: Sequence[Milestone], now: datetime, today: date
) -> dict[int, Burnup]:
    """The burn-up of each milestone that links work, from the stored items."""
    links_of = {int(m.id or 0): [Link.parse(text) for text in m.work] for m in milestones if m.work}
    projects = {
        (link.tracker, link.project.lower() if link.tracker == GITHUB else link.project)
        for links in links_of.values()
        for link in links
    }
    items = queries.items_of_projects(session=session, projects=projects)
    return {m: burnup(links, items, now, today) for m, links in links_of.items()}


def initiative_work(
    session: Session, initiative_ids: Iterable[int], now: datetime, today: date
) -> dict[int, list[tuple[str, Burnup]]]:
    """Per initiative, its open milestones that link work (soonest first) with their burn-up."""
    wanted = set(initiative_ids)
    milestones = sorted(
        (m for m in queries.open_linked_milestones(session=session) if m.initiative_id in wanted),
        key=lambda m: (m.due, m.key),
    )
    burnups = milestone_burnups(session, milestones, now, today)
    found: dict[int, list[tuple[str, Burnup]]] = {}
    for milestone in milestones:
        found.setdefault(milestone.initiative_id, []).append(
            (milestone.title, burnups[milestone.id or 0])
        )
    return found
