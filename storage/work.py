"""Tracker work: webhook deliveries applied once, work items kept newest-wins, milestones' links."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from storage.db import insert_or_skip
from storage.models import Milestone, MilestoneStatus, WebhookDelivery, WorkItem


def record_delivery(*, session: Session, source: str, delivery_id: str, now: datetime) -> bool:
    """True the first time a delivery ID is seen; False for a redelivery (nothing to apply)."""
    inserted = (
        session.connection()
        .execute(
            insert_or_skip(session, WebhookDelivery)
            .values(source=source, delivery_id=delivery_id, received_at=now)
            .on_conflict_do_nothing(index_elements=["source", "delivery_id"])
            .returning(col(WebhookDelivery.source))
        )
        .first()
    )
    return inserted is not None


def linked_milestones(*, session: Session) -> list[tuple[int, list[str]]]:
    """(milestone ID, its work links) of every live milestone that has links."""
    rows = session.exec(
        select(col(Milestone.id), col(Milestone.work)).where(col(Milestone.archived).is_(False))
    ).all()
    return [(int(m or 0), list(work)) for m, work in rows if work]


def open_linked_milestones(*, session: Session) -> list[Milestone]:
    """Live open milestones with work links (what detection reads the work of)."""
    rows = session.exec(
        select(Milestone).where(
            col(Milestone.archived).is_(False), col(Milestone.status) == MilestoneStatus.OPEN
        )
    ).all()
    return [m for m in rows if m.work]


def stored_item(*, session: Session, tracker: str, project: str, ref: str) -> WorkItem | None:
    return session.exec(
        select(WorkItem).where(
            col(WorkItem.tracker) == tracker,
            col(WorkItem.project) == project,
            col(WorkItem.ref) == ref,
        )
    ).first()


def save_item(*, session: Session, values: dict[str, Any]) -> str:
    """Insert the item, or update it unless what is stored is newer: `created`, `updated`, `stale`.

    Both are single statements keyed on (tracker, project, ref), so two deliveries racing for
    the same item leave the newer one, whichever commits first.
    """
    key = {name: values[name] for name in ("tracker", "project", "ref")}
    inserted = (
        session.connection()
        .execute(
            insert_or_skip(session, WorkItem)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["tracker", "project", "ref"])
            .returning(col(WorkItem.id))
        )
        .first()
    )
    if inserted is not None:
        return "created"
    changed = session.connection().execute(
        update(WorkItem)
        .where(
            *(col(getattr(WorkItem, name)) == value for name, value in key.items()),
            col(WorkItem.updated_at) < values["updated_at"],
        )
        .values(**values)
    )
    return "updated" if changed.rowcount else "stale"


def delete_item(*, session: Session, tracker: str, project: str, ref: str) -> bool:
    deleted = session.connection().execute(
        delete(WorkItem).where(
            col(WorkItem.tracker) == tracker,
            col(WorkItem.project) == project,
            col(WorkItem.ref) == ref,
        )
    )
    return bool(deleted.rowcount)


def rename_milestone(*, session: Session, project: str, old: str, new: str | None) -> int:
    """GitHub items under a renamed (or, with `new` None, deleted) milestone follow it."""
    changed = session.connection().execute(
        update(WorkItem)
        .where(
            col(WorkItem.tracker) == "github",
            col(WorkItem.project) == project,
            col(WorkItem.milestone) == old,
        )
        .values(milestone=new)
    )
    return int(changed.rowcount or 0)


def items_of_projects(
    *, session: Session, projects: Iterable[tuple[str, str]]
) -> Sequence[WorkItem]:
    """Every stored item of the (tracker, project) pairs the links name."""
    pairs = sorted(set(projects))
    if not pairs:
        return []
    items: list[WorkItem] = []
    for tracker in {t for t, _ in pairs}:
        names = [p for t, p in pairs if t == tracker]
        items.extend(
            session.exec(
                select(WorkItem).where(
                    col(WorkItem.tracker) == tracker, col(WorkItem.project).in_(names)
                )
            ).all()
        )
    return items
