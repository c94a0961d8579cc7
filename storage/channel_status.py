"""Channel status: what the bot last learnt about a channel the plan names, a problem open until it clears."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlmodel import Session, col

from storage.db import insert_or_skip
from storage.models import ChannelStatus


def record_channel_problem(
    *,
    session: Session,
    ref: str,
    channel_id: str | None,
    name: str,
    problem: str,
    now: datetime,
) -> None:
    """Remember that the bot cannot post to `ref` (not_found | archived | not_member)."""
    values = {"channel_id": channel_id, "name": name, "problem": problem, "checked_at": now}
    statement = (
        insert_or_skip(session, ChannelStatus)
        .values(ref=ref, **values)
        .on_conflict_do_update(index_elements=["ref"], set_=values)
    )
    session.connection().execute(statement)


def clear_channel_problem(*, session: Session, ref: str, now: datetime) -> bool:
    """A post to `ref` worked: its problem, if one was recorded, is over. True when one was."""
    result = session.connection().execute(
        update(ChannelStatus)
        .where(col(ChannelStatus.ref) == ref, col(ChannelStatus.problem).is_not(None))
        .values(problem=None, checked_at=now)
    )
    return bool(result.rowcount)
