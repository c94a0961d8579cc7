"""What the bot knows about the channels the plan names: their IDs and whether it can post to them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col, select

from storage.models import ChannelStatus, PlanSettings, Team


def save_channel_status(
    *,
    session: Session,
    ref: str,
    channel_id: str | None,
    name: str,
    problem: str | None,
    now: datetime,
) -> None:
    """The directory's finding for one plan channel reference (`C…` or `#name`)."""
    status = session.get(ChannelStatus, ref) or ChannelStatus(ref=ref, checked_at=now)
    status.channel_id, status.name, status.problem, status.checked_at = (
        channel_id,
        name,
        problem,
        now,
    )
    session.add(status)


def forget_channels_except(*, session: Session, refs: Iterable[str]) -> None:
    """Channels the plan no longer names are no longer anyone's problem."""
    keep = set(refs)
    for status in session.exec(select(ChannelStatus)):
        if status.ref not in keep:
            session.delete(status)


def plan_refs_for(*, session: Session, channel_id: str) -> list[str]:
    """The plan references that resolve to `channel_id` (a team's channel, or the plan's own)."""
    refs = set(
        session.scalars(
            select(col(ChannelStatus.ref)).where(col(ChannelStatus.channel_id) == channel_id)
        )
    )
    refs.update(
        str(ref)
        for ref in session.scalars(
            select(col(Team.channel)).where(col(Team.channel_id) == channel_id)
        )
        if ref
    )
    settings = session.get(PlanSettings, 1)
    for ref in (settings.alerts_channel, settings.decisions_channel) if settings else ():
        if ref == channel_id:
            refs.add(ref)
    return sorted(refs) or [channel_id]


def record_channel_problem(
    *, session: Session, channel_id: str, problem: str, now: datetime
) -> None:
    """A post to `channel_id` was refused: every plan reference to it has that problem now."""
    for ref in plan_refs_for(session=session, channel_id=channel_id):
        status = session.get(ChannelStatus, ref)
        name = status.name if status is not None else ref.lstrip("#")
        save_channel_status(
            session=session, ref=ref, channel_id=channel_id, name=name, problem=problem, now=now
        )


def clear_channel_problem(*, session: Session, channel_id: str, now: datetime) -> None:
    """A post to `channel_id` went through: whatever was wrong with it is not any more."""
    session.connection().execute(
        update(ChannelStatus)
        .where(col(ChannelStatus.channel_id) == channel_id, col(ChannelStatus.problem).is_not(None))
        .values(problem=None, checked_at=now)
    )
