"""Queries of pulse delivery: who is due, claiming pulses, reminders and escalations exactly once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.models import (
    Alert,
    AlertState,
    Holiday,
    Initiative,
    InitiativeStatus,
    JobRun,
    Objective,
    Person,
    PlanSettings,
    PulseAnswer,
    PulseRequest,
    PulseState,
    Team,
)


@dataclass(frozen=True)
class SentPrompt:
    """One posted prompt message and the pulses it carries."""

    pulse_ids: Sequence[int]
    channel: str
    ts: str
    at: datetime


def _insert(session: Session, table: Any) -> Any:
    """An INSERT that can say ON CONFLICT DO NOTHING on both supported databases."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def plan_settings(*, session: Session) -> PlanSettings:
    """The plan's settings row, or the defaults when no plan was imported yet."""
    return session.get(PlanSettings, 1) or PlanSettings(id=1)


def holidays(*, session: Session) -> list[Holiday]:
    return list(session.exec(select(Holiday)))


def pulse_candidates(*, session: Session) -> list[tuple[Initiative, Person]]:
    """Live initiatives with a reachable owner, owner by owner (a stable order avoids deadlocks)."""
    statement = (
        select(Initiative, Person)
        .join(Person, col(Person.id) == col(Initiative.owner_id))
        .where(
            col(Initiative.archived).is_(False),
            col(Initiative.status) == InitiativeStatus.ACTIVE,
            col(Person.active).is_(True),
            col(Person.slack_id).is_not(None),
        )
        .order_by(col(Initiative.owner_id), col(Initiative.id))
    )
    return [(initiative, person) for initiative, person in session.exec(statement)]


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
        _insert(session, PulseRequest)
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


def pulses_by_ids(*, session: Session, pulse_ids: Iterable[int]) -> list[PulseRequest]:
    ids = list(pulse_ids)
    if not ids:
        return []
    statement = (
        select(PulseRequest).where(col(PulseRequest.id).in_(ids)).order_by(col(PulseRequest.id))
    )
    return list(session.exec(statement))


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


def people_by_ids(*, session: Session, person_ids: Iterable[int | None]) -> dict[int, Person]:
    ids = sorted({pid for pid in person_ids if pid is not None})
    if not ids:
        return {}
    return {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(ids))) if p.id}


def initiatives_by_ids(*, session: Session, initiative_ids: Iterable[int]) -> dict[int, Initiative]:
    ids = sorted(set(initiative_ids))
    if not ids:
        return {}
    statement = select(Initiative).where(col(Initiative.id).in_(ids))
    return {row.id: row for row in session.exec(statement) if row.id is not None}


def objectives_by_ids(*, session: Session, objective_ids: Iterable[int]) -> dict[int, Objective]:
    ids = sorted(set(objective_ids))
    if not ids:
        return {}
    statement = select(Objective).where(col(Objective.id).in_(ids))
    return {row.id: row for row in session.exec(statement) if row.id is not None}


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


def admins(*, session: Session) -> list[Person]:
    statement = (
        select(Person)
        .where(
            col(Person.is_admin).is_(True),
            col(Person.active).is_(True),
            col(Person.slack_id).is_not(None),
        )
        .order_by(col(Person.id))
    )
    return list(session.exec(statement))


def open_alert_once(
    *, session: Session, kind: str, subject: str, detail: dict[str, Any], now: datetime
) -> Alert | None:
    """Open the alert (kind, subject) unless it is already open; the new row, or None."""
    open_key = f"{kind}:{subject}"
    statement = (
        _insert(session, Alert)
        .values(
            kind=kind,
            subject=subject,
            open_key=open_key,
            state=AlertState.OPEN,
            opened_at=now,
            updated_at=now,
            detail=detail,
        )
        .on_conflict_do_nothing(index_elements=["open_key"])
        .returning(col(Alert.id))
    )
    inserted = session.connection().execute(statement).first()
    return session.get(Alert, inserted[0]) if inserted else None


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


def mark_dark(*, session: Session, initiative_ids: Iterable[int], now: datetime) -> None:
    """Flag initiatives whose owner stayed silent (kept from the first time, not moved)."""
    ids = sorted(set(initiative_ids))
    if ids:
        session.connection().execute(
            update(Initiative)
            .where(col(Initiative.id).in_(ids), col(Initiative.dark_since).is_(None))
            .values(dark_since=now)
        )


# --- periodic jobs ---------------------------------------------------------------------------


def claim_job_run(*, session: Session, job: str, period: str, now: datetime) -> int | None:
    """Claim one run of `job` for `period`; None when some process already has it."""
    statement = (
        _insert(session, JobRun)
        .values(job=job, period=period, started_at=now)
        .on_conflict_do_nothing(index_elements=["job", "period"])
        .returning(col(JobRun.id))
    )
    row = session.connection().execute(statement).first()
    return int(row[0]) if row else None


def finish_job_run(*, session: Session, run_id: int, now: datetime) -> None:
    session.connection().execute(
        update(JobRun).where(col(JobRun.id) == run_id).values(finished_at=now)
    )


def release_job_run(*, session: Session, run_id: int) -> None:
    """Drop a failed run's claim so a later tick tries the job again."""
    session.connection().execute(delete(JobRun).where(col(JobRun.id) == run_id))
