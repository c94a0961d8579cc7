"""Pulses: the prompt rows (claimed, sent, reminded, escalated exactly once) and their answers."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, update
from sqlalchemy import (
    select as select_columns,
)  # plain Core rows; sqlmodel's `select` types ORM ones
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.db import insert_or_skip
from storage.models import (
    Initiative,
    InitiativeStatus,
    Person,
    PulseAnswer,
    PulseRequest,
    PulseState,
    Team,
)
from storage.page import Page


@dataclass(frozen=True)
class SentPrompt:
    """One posted prompt message and the pulses it carries."""

    pulse_ids: Sequence[int]
    channel: str
    ts: str
    at: datetime


# --- delivery ----------------------------------------------------------------------------------

_LIVE_WITH_REACHABLE_OWNER = (
    col(Initiative.archived).is_(False),
    col(Initiative.status) == InitiativeStatus.ACTIVE,
    col(Person.active).is_(True),
    col(Person.slack_id).is_not(None),
)
_IDS_PER_QUERY = 1_000


def pulse_candidates(*, session: Session) -> list[tuple[Initiative, Person]]:
    """Live initiatives with a reachable owner, owner by owner (a stable order avoids deadlocks)."""
    statement = (
        select(Initiative, Person)
        .join(Person, col(Person.id) == col(Initiative.owner_id))
        .where(*_LIVE_WITH_REACHABLE_OWNER)
        .order_by(col(Initiative.owner_id), col(Initiative.id))
    )
    return [(initiative, person) for initiative, person in session.exec(statement)]


class PulseCandidate(NamedTuple):
    """The columns the pulse schedule reads of one live initiative and its owner (no ORM rows)."""

    initiative_id: int
    initiative_key: str
    pulse: str | None
    active_since: datetime
    owner_id: int
    owner_tz: str | None
    slack_id: str | None
    slack_linked_at: datetime | None
    away_from: date | None
    away_until: date | None


def pulse_candidate_columns(*, session: Session) -> list[PulseCandidate]:
    """`pulse_candidates` as plain column tuples: a no-op tick reads them all and renders none."""
    statement = (
        select_columns(
            col(Initiative.id),
            col(Initiative.key),
            col(Initiative.pulse),
            col(Initiative.active_since),
            col(Person.id),
            col(Person.tz),
            col(Person.slack_id),
            col(Person.slack_linked_at),
            col(Person.away_from),
            col(Person.away_until),
        )
        .join(Person, col(Person.id) == col(Initiative.owner_id))
        .where(*_LIVE_WITH_REACHABLE_OWNER)
        .order_by(col(Initiative.owner_id), col(Initiative.id))
    )
    # Core rows, not the ORM's: nothing here becomes an object the session tracks.
    return [PulseCandidate._make(row) for row in session.connection().execute(statement)]


def prompt_rows(
    *, session: Session, initiative_ids: Iterable[int]
) -> dict[int, tuple[Initiative, Person]]:
    """Initiatives with their owners as ORM rows, for the prompts about to be rendered."""
    ids = sorted(set(initiative_ids))
    found: dict[int, tuple[Initiative, Person]] = {}
    # In slices, so a big Monday stays within every database's limit on bound parameters.
    for start in range(0, len(ids), _IDS_PER_QUERY):
        statement = (
            select(Initiative, Person)
            .join(Person, col(Person.id) == col(Initiative.owner_id))
            .where(col(Initiative.id).in_(ids[start : start + _IDS_PER_QUERY]))
        )
        for initiative, person in session.exec(statement):
            if initiative.id is not None:
                found[initiative.id] = (initiative, person)
    return found


def existing_pulse_keys(*, session: Session, periods: Iterable[str]) -> set[tuple[int, str]]:
    """(initiative_id, period) pairs that already have a pulse row, in any state."""
    wanted = sorted(set(periods))
    if not wanted:
        return set()
    statement = select(PulseRequest.initiative_id, PulseRequest.period).where(
        col(PulseRequest.period).in_(wanted)
    )
    return {(initiative_id, period) for initiative_id, period in session.exec(statement)}


def claim_pulses(*, session: Session, rows: Sequence[dict[str, Any]]) -> list[PulseRequest]:
    """Insert pulse rows; a row another process inserted first is skipped, not overwritten.

    Each dict has initiative_id, owner_id, period, due_at, next_due_at, claimed_at. On PostgreSQL a
    concurrent insert of the same key waits for the other transaction and then yields nothing.
    """
    if not rows:
        return []
    statement = (
        insert_or_skip(session, PulseRequest)
        .on_conflict_do_nothing(index_elements=["initiative_id", "period"])
        .returning(col(PulseRequest.id), col(PulseRequest.initiative_id), col(PulseRequest.period))
    )
    values = [{**row, "state": PulseState.CLAIMED} for row in rows]
    # One executemany (SQLAlchemy batches it as multi-row INSERTs with RETURNING): one compile,
    # and the rows we won are built from what we inserted instead of being read back.
    result = session.connection().execute(statement, values)
    by_key = {(row["initiative_id"], row["period"]): row for row in values}
    return [
        PulseRequest(id=pulse_id, **by_key[(initiative_id, period)])
        for pulse_id, initiative_id, period in result
    ]


def mark_sent(*, session: Session, sent: Sequence[SentPrompt]) -> None:
    """Record where each prompt landed; rows another process already settled are left alone."""
    if not sent:
        return
    table = PulseRequest.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.id == bindparam("pulse_id"), table.c.state == PulseState.CLAIMED)
        .values(
            state=PulseState.SENT,
            sent_at=bindparam("at"),
            channel_id=bindparam("channel"),
            message_ts=bindparam("ts"),
        )
    )
    session.connection().execute(
        statement,
        [
            {"pulse_id": pulse_id, "at": prompt.at, "channel": prompt.channel, "ts": prompt.ts}
            for prompt in sent
            for pulse_id in prompt.pulse_ids
        ],
    )


def mark_failed(*, session: Session, pulse_ids: Sequence[int], error: str) -> None:
    session.connection().execute(
        update(PulseRequest)
        .where(
            col(PulseRequest.id).in_(list(pulse_ids)), col(PulseRequest.state) == PulseState.CLAIMED
        )
        .values(state=PulseState.FAILED, error=error[:500])
    )


def release_claims(*, session: Session, pulse_ids: Sequence[int]) -> None:
    """Forget claims whose prompt was certainly never posted, so the next tick can send them."""
    if pulse_ids:
        session.connection().execute(
            delete(PulseRequest).where(
                col(PulseRequest.id).in_(list(pulse_ids)),
                col(PulseRequest.state) == PulseState.CLAIMED,
            )
        )


def stale_claims(*, session: Session, claimed_before: datetime) -> list[PulseRequest]:
    """Claimed but never confirmed posted, for longer than any live sender would take."""
    statement = (
        select(PulseRequest)
        .where(
            col(PulseRequest.state) == PulseState.CLAIMED,
            col(PulseRequest.claimed_at) < claimed_before,
        )
        .order_by(col(PulseRequest.owner_id), col(PulseRequest.id))
    )
    return list(session.exec(statement))


def take_over_claim(
    *, session: Session, pulse_id: int, claimed_at: datetime | None, now: datetime
) -> bool:
    """Renew a stale claim; False when another process renewed or finished it first."""
    result = session.connection().execute(
        update(PulseRequest)
        .where(
            col(PulseRequest.id) == pulse_id,
            col(PulseRequest.state) == PulseState.CLAIMED,
            col(PulseRequest.claimed_at) == claimed_at,
        )
        .values(claimed_at=now)
    )
    return bool(result.rowcount == 1)


def last_dm_channel(*, session: Session, owner_id: int) -> str | None:
    """The DM conversation (`D…`) of an earlier prompt to this owner, if any."""
    statement = (
        select(PulseRequest.channel_id)
        .where(col(PulseRequest.owner_id) == owner_id, col(PulseRequest.channel_id).is_not(None))
        .order_by(col(PulseRequest.sent_at).desc())
        .limit(1)
    )
    return session.exec(statement).first()


# --- the pulse rows and their answers ----------------------------------------------------------


def pulse_by_id(*, session: Session, pulse_id: int) -> PulseRequest | None:
    return session.get(PulseRequest, pulse_id)


def pulse_for_update(*, session: Session, pulse_id: int) -> PulseRequest | None:
    """The pulse row, locked until commit so two clicks on it answer one after the other."""
    if session.get_bind().dialect.name == "sqlite":
        # SQLite ignores FOR UPDATE, and its driver opens the transaction only at the first
        # write: a no-op UPDATE takes the write lock now, before anything is read.
        session.exec(
            update(PulseRequest).where(col(PulseRequest.id) == pulse_id).values(id=PulseRequest.id)
        )
    statement = (
        select(PulseRequest)
        .where(PulseRequest.id == pulse_id)
        .with_for_update()
        # Re-read the locked row even if this session loaded it before taking the lock.
        .execution_options(populate_existing=True)
    )
    return session.exec(statement).first()


def latest_answer(*, session: Session, pulse_id: int) -> PulseAnswer | None:
    """The current (newest) answer of one pulse, if it has one."""
    return latest_answers(session=session, pulse_ids=[pulse_id]).get(pulse_id)


def latest_answers(*, session: Session, pulse_ids: Iterable[int]) -> dict[int, PulseAnswer]:
    """The current (newest) answer of each pulse that has one."""
    ids = sorted(set(pulse_ids))
    if not ids:
        return {}
    statement = (
        select(PulseAnswer)
        .where(col(PulseAnswer.pulse_request_id).in_(ids))
        .order_by(col(PulseAnswer.answered_at).desc(), col(PulseAnswer.id).desc())
    )
    newest: dict[int, PulseAnswer] = {}
    for answer in session.exec(statement):
        newest.setdefault(answer.pulse_request_id, answer)
    return newest


def save_answer(*, session: Session, answer: PulseAnswer) -> int:
    """Record a new current answer: its pulse is answered, its initiative no longer dark; its id."""
    pulse = session.get(PulseRequest, answer.pulse_request_id)
    if pulse is None:
        raise LookupError(f"no pulse {answer.pulse_request_id}")
    session.add(answer)
    pulse.state = PulseState.ANSWERED
    pulse.answered_at = answer.answered_at
    session.add(pulse)
    initiative = session.get(Initiative, pulse.initiative_id)
    if initiative is not None:
        initiative.dark_since = None
        session.add(initiative)
    session.flush()
    assert answer.id is not None
    return answer.id


def pulses_in_message(*, session: Session, channel_id: str, message_ts: str) -> list[PulseRequest]:
    """Every pulse shown in one prompt DM (an owner gets one message for several initiatives)."""
    statement = (
        select(PulseRequest)
        .where(PulseRequest.channel_id == channel_id, PulseRequest.message_ts == message_ts)
        .order_by(col(PulseRequest.id))
    )
    return list(session.exec(statement))


def _still_open(person_id: int, now: datetime) -> list[Any]:
    """This person's pulses on live initiatives whose period has not ended at `now`."""
    return [
        Initiative.owner_id == person_id,
        col(Initiative.archived).is_(False),
        (col(PulseRequest.next_due_at).is_(None)) | (col(PulseRequest.next_due_at) > now),
    ]


def _unanswered() -> list[Any]:
    return [PulseRequest.state == PulseState.SENT, col(PulseRequest.answered_at).is_(None)]


def pending_pulses(
    *, session: Session, person_id: int, now: datetime, limit: int
) -> Page[tuple[PulseRequest, Initiative]]:
    """Prompts sent to this person that wait for an answer and whose period has not ended.

    The first `limit` (oldest first), and how many there are in all: `/pulse` and Home list them.
    """
    statement = (
        select(PulseRequest, Initiative)
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .where(*_still_open(person_id, now), *_unanswered())
        .order_by(col(PulseRequest.due_at), col(Initiative.key))
        .limit(limit)
    )
    rows = [(pulse, initiative) for pulse, initiative in session.exec(statement)]
    if len(rows) < limit:
        return Page(rows=rows, total=len(rows))
    count = (
        select(func.count())
        .select_from(PulseRequest)
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .where(*_still_open(person_id, now), *_unanswered())
    )
    return Page(rows=rows, total=int(session.exec(count).one()))


def answered_open_pulses(
    *, session: Session, person_id: int, now: datetime, limit: int
) -> Sequence[tuple[PulseRequest, Initiative]]:
    """Pulses this person answered whose period has not ended: the answer can still change."""
    statement = (
        select(PulseRequest, Initiative)
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .where(*_still_open(person_id, now), col(PulseRequest.answered_at).is_not(None))
        .order_by(col(PulseRequest.answered_at).desc(), col(Initiative.key))
        .limit(limit)
    )
    return list(session.exec(statement))


# --- reminders and escalation ----------------------------------------------------------------


def _unanswered_before_period_end(now: datetime) -> list[Any]:
    return [
        col(PulseRequest.state) == PulseState.SENT,
        col(PulseRequest.answered_at).is_(None),
        col(PulseRequest.next_due_at) > now,
        col(Initiative.archived).is_(False),
        col(Initiative.status) == InitiativeStatus.ACTIVE,
    ]


def reminder_candidates(
    *, session: Session, sent_before: datetime, now: datetime
) -> list[tuple[PulseRequest, Initiative, Person]]:
    """Prompts sent long enough ago, unanswered, not yet reminded, whose period is still open."""
    statement = (
        select(PulseRequest, Initiative, Person)
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .join(Person, col(Person.id) == col(PulseRequest.owner_id))
        .where(
            *_unanswered_before_period_end(now),
            col(PulseRequest.reminded_at).is_(None),
            col(PulseRequest.sent_at) <= sent_before,
            col(PulseRequest.message_ts).is_not(None),
        )
        .order_by(col(PulseRequest.id))
    )
    return [(p, i, o) for p, i, o in session.exec(statement)]


def escalation_candidates(
    *, session: Session, reminded_before: datetime, now: datetime
) -> list[tuple[PulseRequest, Initiative, Person, Person | None]]:
    """Reminded long enough ago and still unanswered: (pulse, initiative, owner, team lead)."""
    lead = aliased(Person)
    statement = (
        select(PulseRequest, Initiative, Person, lead)
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .join(Person, col(Person.id) == col(PulseRequest.owner_id))
        .join(Team, col(Team.id) == col(Initiative.team_id))
        .outerjoin(lead, lead.id == Team.lead_id)  # type: ignore[arg-type]
        .where(
            *_unanswered_before_period_end(now),
            col(PulseRequest.escalated_at).is_(None),
            col(PulseRequest.reminded_at) <= reminded_before,
        )
        .order_by(col(PulseRequest.id))
    )
    return [(p, i, o, ld) for p, i, o, ld in session.exec(statement)]


def claim_follow_up(
    *, session: Session, stage: str, pulse_ids: Sequence[int], now: datetime
) -> list[int]:
    """Stamp `reminded_at` or `escalated_at` where still empty and unanswered; the ids this won.

    The condition is part of the UPDATE, so of two ticks racing for a pulse exactly one wins,
    and an answer recorded a moment earlier stops it.
    """
    column = {"reminded": PulseRequest.reminded_at, "escalated": PulseRequest.escalated_at}[stage]
    if not pulse_ids:
        return []
    statement = (
        update(PulseRequest)
        .where(
            col(PulseRequest.id).in_(list(pulse_ids)),
            col(column).is_(None),
            col(PulseRequest.answered_at).is_(None),
            col(PulseRequest.state) == PulseState.SENT,
        )
        .values({f"{stage}_at": now})
        .returning(col(PulseRequest.id))
    )
    return sorted(row[0] for row in session.connection().execute(statement) if row[0] is not None)


def unclaim_follow_up(
    *, session: Session, stage: str, pulse_ids: Sequence[int], now: datetime
) -> None:
    """Undo a stage claim whose message certainly did not go out, so a later tick retries it."""
    column = {"reminded": PulseRequest.reminded_at, "escalated": PulseRequest.escalated_at}[stage]
    session.connection().execute(
        update(PulseRequest)
        .where(col(PulseRequest.id).in_(list(pulse_ids)), col(column) == now)
        .values({f"{stage}_at": None})
    )
