"""Slack event IDs claimed for processing: the unique insert that makes Slack's retries harmless."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlmodel import Session, col

from storage.db import insert_or_skip
from storage.models import ProcessedEvent


def claim_event(*, session: Session, event_id: str, now: datetime) -> bool:
    """Record `event_id`; False when it was already recorded (a retry, or another replica got it)."""
    statement = (
        insert_or_skip(session, ProcessedEvent)
        .values(event_id=event_id, received_at=now)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(col(ProcessedEvent.event_id))
    )
    # RETURNING, not rowcount: through the ORM session PostgreSQL reports rowcount -1 here.
    return session.connection().execute(statement).first() is not None


def forget_events(*, session: Session, before: datetime) -> int:
    """Drop IDs older than `before`: Slack stops retrying within minutes, so a day is plenty."""
    result = session.execute(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < before))
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_event(*, session: Session, event_id: str) -> bool:
    """Forget `event_id` (its processing failed), so that Slack's next retry can claim it again."""
    result = session.execute(delete(ProcessedEvent).where(col(ProcessedEvent.event_id) == event_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
