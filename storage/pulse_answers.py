"""Queries of the answering side of pulses: answers, the rows an answer touches, pending prompts."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from storage.models import (
    Initiative,
    InitiativeKpi,
    Kpi,
    KpiReading,
    Milestone,
    MilestoneStatus,
    Person,
    PlanSettings,
    PulseAnswer,
    PulseRequest,
    PulseState,
)


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


def person_by_slack_id(*, session: Session, slack_id: str) -> Person | None:
    return session.exec(select(Person).where(Person.slack_id == slack_id)).first()


def plan_timezone(*, session: Session) -> str:
    settings = session.get(PlanSettings, 1)
    return settings.timezone if settings is not None else "UTC"


def latest_answer(*, session: Session, pulse_id: int) -> PulseAnswer | None:
    statement = (
        select(PulseAnswer)
        .where(PulseAnswer.pulse_request_id == pulse_id)
        .order_by(col(PulseAnswer.answered_at).desc(), col(PulseAnswer.id).desc())
    )
    return session.exec(statement).first()


def linked_kpis(*, session: Session, initiative_id: int) -> list[Kpi]:
    statement = (
        select(Kpi)
        .join(InitiativeKpi, col(InitiativeKpi.kpi_id) == col(Kpi.id))
        .where(InitiativeKpi.initiative_id == initiative_id, col(Kpi.archived).is_(False))
        .order_by(col(Kpi.key))
    )
    return list(session.exec(statement))


def latest_readings(*, session: Session, kpi_ids: Iterable[int]) -> dict[int, KpiReading]:
    """The newest reading of each KPI (by as_of, then by when it was recorded)."""
    ids = list(kpi_ids)
    if not ids:
        return {}
    statement = (
        select(KpiReading)
        .where(col(KpiReading.kpi_id).in_(ids))
        .order_by(
            col(KpiReading.kpi_id),
            col(KpiReading.as_of).desc(),
            col(KpiReading.recorded_at).desc(),
            col(KpiReading.id).desc(),
        )
    )
    newest: dict[int, KpiReading] = {}
    for reading in session.exec(statement):
        newest.setdefault(reading.kpi_id, reading)
    return newest


def initiative_milestones(*, session: Session, initiative_id: int) -> list[Milestone]:
    """Every live milestone of an initiative, open ones and done ones, by due date."""
    statement = (
        select(Milestone)
        .where(Milestone.initiative_id == initiative_id, col(Milestone.archived).is_(False))
        .order_by(col(Milestone.due), col(Milestone.key))
    )
    return list(session.exec(statement))


def open_milestones(*, session: Session, initiative_id: int) -> list[Milestone]:
    return [
        milestone
        for milestone in initiative_milestones(session=session, initiative_id=initiative_id)
        if milestone.status == MilestoneStatus.OPEN
    ]


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
) -> Sequence[tuple[PulseRequest, Initiative]]:
    """Prompts sent to this person that wait for an answer and whose period has not ended."""
    statement = (
        select(PulseRequest, Initiative)
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .where(*_still_open(person_id, now), *_unanswered())
        .order_by(col(PulseRequest.due_at), col(Initiative.key))
        .limit(limit)
    )
    return list(session.exec(statement))


def count_pending_pulses(*, session: Session, person_id: int, now: datetime) -> int:
    statement = (
        select(func.count())
        .select_from(PulseRequest)
        .join(Initiative, col(Initiative.id) == col(PulseRequest.initiative_id))
        .where(*_still_open(person_id, now), *_unanswered())
    )
    return int(session.exec(statement).one())


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


def add_row(*, session: Session, row: PulseAnswer | KpiReading) -> None:
    session.add(row)
    session.flush()
