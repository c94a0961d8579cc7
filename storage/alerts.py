"""Alert rows: raised once per (kind, subject) while it lasts, claimed for posting, changed and resolved conditionally.

Every write that leads to a Slack call is a conditional UPDATE (or an insert that skips on the
unique open key), so that of two ticks running at once only one posts, updates or resolves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, col, select

from storage.db import insert_or_skip
from storage.models import Alert, AlertState


def open_key(kind: str, subject: str) -> str:
    return f"{kind}:{subject}"


def open_alerts(*, session: Session, kinds: Iterable[str] | None = None) -> list[Alert]:
    statement = select(Alert).where(col(Alert.state) == AlertState.OPEN)
    if kinds is not None:
        statement = statement.where(col(Alert.kind).in_(list(kinds)))
    return list(session.exec(statement.order_by(col(Alert.id))))


def open_alert_index(*, session: Session) -> dict[str, tuple[int, str | None]]:
    """Every open alert's key → (ID, fingerprint): all a pass needs to see what changed."""
    statement = select(col(Alert.open_key), col(Alert.id), col(Alert.shown)).where(
        col(Alert.state) == AlertState.OPEN
    )
    return {
        str(key): (alert_id, shown)
        for key, alert_id, shown in session.exec(statement)
        if alert_id is not None
    }


def alerts_by_ids(*, session: Session, alert_ids: Sequence[int]) -> dict[int, Alert]:
    if not alert_ids:
        return {}
    statement = select(Alert).where(col(Alert.id).in_(list(alert_ids)))
    return {int(a.id): a for a in session.exec(statement) if a.id is not None}


def unposted_alerts(*, session: Session) -> list[Alert]:
    """Open alerts not yet in Slack: new ones, and those a refused or crashed post left behind."""
    statement = select(Alert).where(
        col(Alert.state) == AlertState.OPEN, col(Alert.posted_at).is_(None)
    )
    return list(session.exec(statement.order_by(col(Alert.id))))


def posted_untold_alerts(*, session: Session) -> list[Alert]:
    """Open alerts in Slack (or posted nowhere) whose people were not told yet."""
    statement = select(Alert).where(
        col(Alert.state) == AlertState.OPEN,
        col(Alert.posted_at).is_not(None),
        col(Alert.notified_at).is_(None),
    )
    return list(session.exec(statement.order_by(col(Alert.id))))


def raise_alert(
    *,
    session: Session,
    kind: str,
    subject: str,
    facts: dict[str, Any],
    shown: str,
    channel_id: str | None,
    now: datetime,
) -> int | None:
    """Open the alert (kind, subject) unless it is already open: the new row's ID, or None."""
    statement = (
        insert_or_skip(session, Alert)
        .values(
            kind=kind,
            subject=subject,
            open_key=open_key(kind, subject),
            state=AlertState.OPEN,
            opened_at=now,
            updated_at=now,
            channel_id=channel_id,
            in_summary=False,
            shown=shown,
            facts=facts,
        )
        .on_conflict_do_nothing(index_elements=["open_key"])
        .returning(col(Alert.id))
    )
    inserted = session.connection().execute(statement).first()
    return int(inserted[0]) if inserted else None


def claim_for_posting(
    *, session: Session, alert_ids: Sequence[int], now: datetime, lease: timedelta
) -> list[int]:
    """Those of `alert_ids` this process may post: unposted, and unclaimed or claimed long ago."""
    if not alert_ids:
        return []
    statement = (
        update(Alert)
        .where(
            col(Alert.id).in_(list(alert_ids)),
            col(Alert.state) == AlertState.OPEN,
            col(Alert.posted_at).is_(None),
            or_(col(Alert.claimed_at).is_(None), col(Alert.claimed_at) < now - lease),
        )
        .values(claimed_at=now)
        .returning(Alert.__table__.c.id)  # type: ignore[attr-defined]
    )
    return sorted(int(row[0]) for row in session.connection().execute(statement))


def release_claims(*, session: Session, alert_ids: Sequence[int]) -> None:
    """Give back claims whose post failed, so that the next tick tries again."""
    if alert_ids:
        session.connection().execute(
            update(Alert).where(col(Alert.id).in_(list(alert_ids))).values(claimed_at=None)
        )


def mark_posted(
    *,
    session: Session,
    alert_ids: Sequence[int],
    channel_id: str,
    ts: str,
    in_summary: bool,
    now: datetime,
) -> None:
    session.connection().execute(
        update(Alert)
        .where(col(Alert.id).in_(list(alert_ids)))
        .values(channel_id=channel_id, message_ts=ts, in_summary=in_summary, posted_at=now)
    )


def claim_notification(*, session: Session, alert_id: int, now: datetime) -> bool:
    """True for the one process that tells the alert's people by DM (they hear it once)."""
    statement = (
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.notified_at).is_(None))
        .values(notified_at=now)
    )
    return session.connection().execute(statement).rowcount == 1


def change_facts(
    *,
    session: Session,
    alert_id: int,
    shown_before: str | None,
    facts: dict[str, Any],
    shown: str,
    now: datetime,
) -> bool:
    """Record what the alert now shows; False when another process already did (it updates Slack)."""
    statement = (
        update(Alert)
        .where(
            col(Alert.id) == alert_id,
            col(Alert.state) == AlertState.OPEN,
            col(Alert.shown).is_(None)
            if shown_before is None
            else col(Alert.shown) == shown_before,
        )
        .values(facts=facts, shown=shown, updated_at=now)
    )
    return session.connection().execute(statement).rowcount == 1


def resolve(*, session: Session, alert_id: int, now: datetime) -> bool:
    """Close the alert; False when it was already closed (another process tells Slack)."""
    statement = (
        update(Alert)
        .where(col(Alert.id) == alert_id, col(Alert.state) == AlertState.OPEN)
        .values(state=AlertState.RESOLVED, open_key=None, resolved_at=now, updated_at=now)
    )
    return session.connection().execute(statement).rowcount == 1


def alerts_in_message(*, session: Session, channel_id: str, ts: str) -> list[Alert]:
    """Every alert a message shows: one, or all those listed in a summary."""
    statement = select(Alert).where(
        col(Alert.channel_id) == channel_id, col(Alert.message_ts) == ts
    )
    return list(session.exec(statement.order_by(col(Alert.id))))


def alert_by_id(*, session: Session, alert_id: int) -> Alert | None:
    return session.get(Alert, alert_id)
