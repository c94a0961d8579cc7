"""A verified webhook delivery applied to the work items: once per delivery ID, newest update wins,
only work the plan links is kept."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session

from bot.services import Services
from bot.work.links import Link
from bot.work.payloads import (
    GITHUB,
    Ignored,
    MilestoneChange,
    Parsed,
    Ping,
    Unreadable,
    WorkUpdate,
)
from storage import work as queries
from storage.db import session_scope

log = logging.getLogger(__name__)


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    STALE = "stale"  # an older update than the one stored: not applied
    UNLINKED = "unlinked"  # work no milestone links: not stored
    DELETED = "deleted"
    RENAMED = "renamed"
    DUPLICATE = "duplicate"  # a delivery ID already applied
    IGNORED = "ignored"  # an event that says nothing about work
    PONG = "pong"
    UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Receipt:
    status: int
    outcome: Outcome


def _normalized(update: WorkUpdate) -> WorkUpdate:
    # GitHub repository names are case-insensitive: stored and compared in lower case.
    return replace(update, project=update.project.lower()) if update.tracker == GITHUB else update


def plan_links(session: Session) -> list[Link]:
    return [
        Link.parse(text) for _, work in queries.linked_milestones(session=session) for text in work
    ]


def apply_update(session: Session, update: WorkUpdate) -> Outcome:
    update = _normalized(update)
    key = {"tracker": update.tracker, "project": update.project, "ref": update.ref}
    existing = queries.stored_item(session=session, **key)
    if update.deleted:
        return Outcome.DELETED if queries.delete_item(session=session, **key) else Outcome.UNLINKED
    if existing is None and not any(link.takes(update) for link in plan_links(session)):
        return Outcome.UNLINKED
    # A stored item keeps being updated even once no link takes it (a label removed): it then
    # simply stops counting for the milestone.
    saved = queries.save_item(
        session=session,
        values={
            **key,
            "kind": update.kind,
            "title": update.title[:500],
            "url": update.url,
            "closed": update.closed,
            "labels": list(update.labels),
            "milestone": update.milestone,
            "epic": update.epic,
            "assignee": update.assignee,
            "closed_at": update.closed_at,
            "updated_at": update.updated_at,
        },
    )
    return Outcome(saved)


def receive(
    services: Services, *, source: str, delivery_id: str, parsed: Parsed, now: datetime
) -> Receipt:
    """Apply one verified delivery in one transaction (its ID recorded with what it changed)."""
    if isinstance(parsed, Unreadable):
        log.warning(
            "a %s webhook delivery %s was not understood: %s", source, delivery_id, parsed.reason
        )
        return Receipt(400, Outcome.UNREADABLE)
    if isinstance(parsed, Ping):
        return Receipt(200, Outcome.PONG)
    if isinstance(parsed, Ignored):
        return Receipt(202, Outcome.IGNORED)
    with session_scope(services.engine) as session:
        if not queries.record_delivery(
            session=session, source=source, delivery_id=delivery_id, now=now
        ):
            return Receipt(200, Outcome.DUPLICATE)
        if isinstance(parsed, MilestoneChange):
            queries.rename_milestone(
                session=session,
                project=parsed.project.lower(),
                old=parsed.renamed_from or parsed.title,
                new=None if parsed.deleted else parsed.title,
            )
            return Receipt(200, Outcome.RENAMED)
        return Receipt(200, apply_update(session, parsed))
