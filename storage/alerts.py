"""Alerts: one open row per (kind, subject), opened once, resolved when the condition clears."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from storage.db import insert_or_skip
from storage.models import Alert, AlertState


def open_alert_once(
    *, session: Session, kind: str, subject: str, facts: dict[str, Any], now: datetime
) -> Alert | None:
    """Open the alert (kind, subject) unless it is already open; the new row, or None."""
    open_key = f"{kind}:{subject}"
    statement = (
        insert_or_skip(session, Alert)
        .values(
            kind=kind,
            subject=subject,
            open_key=open_key,
            state=AlertState.OPEN,
            opened_at=now,
            updated_at=now,
            facts=facts,
        )
        .on_conflict_do_nothing(index_elements=["open_key"])
        .returning(col(Alert.id))
    )
    inserted = session.connection().execute(statement).first()
    return session.get(Alert, inserted[0]) if inserted else None


def resolve_cleared_alerts(
    *, session: Session, kind: str, still_open: Iterable[str], now: datetime
) -> list[str]:
    """Resolve the open alerts of `kind` whose subject is no longer a problem; their subjects."""
    keep = set(still_open)
    statement = select(Alert).where(col(Alert.kind) == kind, col(Alert.state) == AlertState.OPEN)
    cleared = []
    for alert in session.exec(statement):
        if alert.subject in keep:
            continue
        alert.state = AlertState.RESOLVED
        alert.open_key = None
        alert.resolved_at = now
        alert.updated_at = now
        session.add(alert)
        cleared.append(alert.subject)
    return cleared
