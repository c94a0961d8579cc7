"""The audit log: who changed which plan item, when, and its values before and after."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from storage.audit import insert_audit_entries


@dataclass(frozen=True)
class Change:
    action: str  # create | update | archive | restore | ...
    entity: str  # person | team | objective | kpi | kpi_reading | initiative | milestone | ...
    entity_key: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


def json_safe(value: Any) -> Any:
    """Dates as ISO text, tuples as lists: the log is JSON on every database."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return value


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity: str,
    entity_key: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    now: datetime,
) -> None:
    """Record one change, in the caller's transaction (it commits or rolls back with the change)."""
    record_many(
        session, actor=actor, now=now, changes=[Change(action, entity, entity_key, before, after)]
    )


def record_many(session: Session, *, actor: str, now: datetime, changes: Iterable[Change]) -> None:
    insert_audit_entries(
        session=session,
        rows=[
            {
                "at": now,
                "actor": actor,
                "action": change.action,
                "entity": change.entity,
                "entity_key": change.entity_key,
                "before": json_safe(change.before) if change.before is not None else None,
                "after": json_safe(change.after) if change.after is not None else None,
            }
            for change in changes
        ],
    )
