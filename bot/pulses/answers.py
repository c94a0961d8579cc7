"""Recording an owner's answer to a pulse: who may answer, until when, and what it changes in the plan."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from sqlmodel import Session

from bot import audit
from bot.errors import NotAllowed, NotFound, UserError
from bot.pulses.messages import prompt_message
from bot.services import Services
from bot.slack.errors import SlackError
from bot.timezones import local_date, person_zone
from storage import people, plan, pulses
from storage.db import session_scope
from storage.models import (
    Initiative,
    KpiReading,
    Milestone,
    MilestoneStatus,
    Person,
    PulseAnswer,
    PulseRequest,
    PulseStatus,
)

log = logging.getLogger(__name__)

DONE: Literal["done"] = "done"
MilestoneUpdate = date | Literal["done"]
CONFIDENCE_RANGE = range(1, 6)
BLOCKERS_MAX = 3000
# Within a message's 50 blocks: two per pending pulse, one per answered pulse, a few headings.
PENDING_LIMIT = 20
ANSWERED_LIMIT = 5


@dataclass(frozen=True)
class RecordedAnswer:
    """What `record_answer` did; `created` is False when it repeated the current answer exactly."""

    pulse_id: int
    answer_id: int
    created: bool


@dataclass(frozen=True)
class ListedPulse:
    """A pulse the owner can still answer, or whose answer they can still change."""

    pulse_id: int
    initiative_key: str
    initiative_title: str
    asked_at: datetime | None
    closes_at: datetime | None
    status: str | None = None  # the current answer, when there is one
    answered_at: datetime | None = None


@dataclass(frozen=True)
class MyPulses:
    pending: list[ListedPulse]
    total_pending: int
    answered: list[ListedPulse]


def check_can_answer(
    session: Session, *, pulse_id: int, person: str, now: datetime, lock: bool = False
) -> tuple[PulseRequest, Initiative, Person]:
    """The pulse, its initiative and the answering owner; raises a UserError for anyone else or too late."""
    pulse = (
        pulses.pulse_for_update(session=session, pulse_id=pulse_id)
        if lock
        else pulses.pulse_by_id(session=session, pulse_id=pulse_id)
    )
    if pulse is None:
        raise NotFound("That pulse check no longer exists.")
    initiative = plan.initiative_by_id(session=session, initiative_id=pulse.initiative_id)
    owner = (
        people.person_by_id(session=session, person_id=initiative.owner_id)
        if initiative is not None
        else None
    )
    if initiative is None or owner is None or owner.slack_id != person:
        title = initiative.title if initiative is not None else "this initiative"
        raise NotAllowed(f"Only the owner of {title} can answer its pulse check.")
    if pulse.next_due_at is not None and now >= pulse.next_due_at:
        raise UserError(
            f"The pulse check for {initiative.title} closed when its period ended; "
            "answer the current one instead."
        )
    return pulse, initiative, owner


def record_answer(
    session: Session,
    *,
    pulse_id: int,
    person: str,
    status: str,
    confidence: int | None = None,
    kpi_values: Mapping[int, float] | None = None,
    milestone_updates: Mapping[int, MilestoneUpdate] | None = None,
    blockers: str | None = None,
    dependency_late: bool = False,
    now: datetime,
) -> RecordedAnswer:
    """Record `person`'s (a Slack user ID) answer; the newest answer is current, older ones stay.

    Repeating the current answer exactly (a double click, a retried request) writes nothing, so
    it cannot change the outcome. KPI values are keyed by KPI id, milestone updates by milestone id.
    """
    return _record(
        session,
        pulse_id=pulse_id,
        person=person,
        status=status,
        details=_Details(
            confidence=confidence,
            kpi_values=dict(kpi_values or {}),
            milestone_updates=dict(milestone_updates or {}),
            blockers=blockers,
            dependency_late=dependency_late,
        ),
        now=now,
    )


def record_status(
    session: Session, *, pulse_id: int, person: str, status: str, now: datetime
) -> RecordedAnswer:
    """A quick button: the status changes, and the rest of the current answer stays as it was.

    The new answer row repeats the current one's confidence, blockers and late-dependency flag;
    its KPI readings and milestone changes are rows of their own and stay untouched.
    """
    return _record(session, pulse_id=pulse_id, person=person, status=status, details=None, now=now)


@dataclass(frozen=True)
class _Details:
    """Everything of an answer but its status."""

    confidence: int | None = None
    kpi_values: dict[int, float] = field(default_factory=dict)
    milestone_updates: dict[int, MilestoneUpdate] = field(default_factory=dict)
    blockers: str | None = None
    dependency_late: bool = False

    @classmethod
    def kept_from(cls, answer: PulseAnswer | None) -> _Details:
        """The answer's own fields; its readings and milestone changes are already recorded."""
        if answer is None:
            return cls()
        return cls(
            confidence=answer.confidence,
            blockers=answer.blockers,
            dependency_late=answer.dependency_late,
        )


def _record(
    session: Session,
    *,
    pulse_id: int,
    person: str,
    status: str,
    details: _Details | None,  # None: a quick button, the current answer's details stay
    now: datetime,
) -> RecordedAnswer:
    pulse, initiative, owner = check_can_answer(
        session, pulse_id=pulse_id, person=person, now=now, lock=True
    )
    assert pulse.id is not None and initiative.id is not None and owner.id is not None
    # Read under the pulse row's lock, so details being saved by another click are not lost.
    previous = pulses.latest_answer(session=session, pulse_id=pulse.id)
    quick = details is None
    if details is None:
        details = _Details.kept_from(previous)
    confidence, dependency_late = details.confidence, details.dependency_late
    _check_fields(status, confidence, details.blockers)
    blockers = details.blockers.strip() or None if details.blockers is not None else None
    today = local_date(now, person_zone(owner.tz, plan.plan_timezone(session=session)))
    actor = f"slack:{person}"

    readings = _new_readings(session, initiative, owner, details.kpi_values, today, now)
    milestone_changes = _milestone_changes(session, initiative, details.milestone_updates, today)

    answer_fields: dict[str, Any] = {
        "status": status,
        "confidence": confidence,
        "blockers": blockers,
        "dependency_late": dependency_late,
    }
    unchanged = (
        previous is not None
        and previous.answered_by_id == owner.id
        and _answer_fields(previous) == answer_fields
    )
    if unchanged and not readings and not milestone_changes:
        assert previous is not None and previous.id is not None
        return RecordedAnswer(pulse_id=pulse.id, answer_id=previous.id, created=False)

    answer = PulseAnswer(
        pulse_request_id=pulse.id,
        answered_by_id=owner.id,
        answered_at=now,
        status=status,
        confidence=confidence,
        blockers=blockers,
        dependency_late=dependency_late,
    )
    answer_id = pulses.save_answer(session=session, answer=answer)
    plan.save_readings(session=session, readings=[reading for reading, _ in readings])
    for reading, kpi_key in readings:
        audit.record(
            session,
            actor=actor,
            action="reading",
            entity="kpi",
            entity_key=kpi_key,
            before=None,
            after={"value": reading.value, "as_of": reading.as_of.isoformat(), "source": "pulse"},
            now=now,
        )
    for milestone, update in milestone_changes:
        assert milestone.id is not None
        before = _milestone_state(milestone)
        if isinstance(update, date):
            plan.set_expected_due(session=session, milestone_id=milestone.id, expected_due=update)
        else:
            plan.mark_milestone_done(session=session, milestone_id=milestone.id, at=now)
        audit.record(
            session,
            actor=actor,
            action="update",
            entity="milestone",
            entity_key=milestone.key,
            before=before,
            after=_milestone_state(milestone),
            now=now,
        )
    if quick:  # the status is all that was given, and all that changed
        audit_before = {"status": previous.status} if previous is not None else None
        audit_after: dict[str, Any] = {"status": status}
    else:
        audit_before = _answer_fields(previous) if previous is not None else None
        audit_after = {
            **answer_fields,
            "kpi_values": {key: reading.value for reading, key in readings},
            "milestones": {
                milestone.key: update.isoformat() if isinstance(update, date) else DONE
                for milestone, update in milestone_changes
            },
        }
    audit.record(
        session,
        actor=actor,
        action="answer",
        entity="pulse",
        entity_key=f"{initiative.key}@{pulse.period}",
        before=audit_before,
        after=audit_after,
        now=now,
    )
    return RecordedAnswer(pulse_id=pulse.id, answer_id=answer_id, created=True)


def _check_fields(status: str, confidence: int | None, blockers: str | None) -> None:
    if status not in set(PulseStatus):
        raise UserError("Choose on track, at risk or off track.")
    if confidence is not None and confidence not in CONFIDENCE_RANGE:
        raise UserError("Confidence goes from 1 (low) to 5 (high).")
    if blockers is not None and len(blockers) > BLOCKERS_MAX:
        raise UserError(f"Keep the blockers under {BLOCKERS_MAX} characters.")


def _answer_fields(answer: PulseAnswer) -> dict[str, Any]:
    return {
        "status": answer.status,
        "confidence": answer.confidence,
        "blockers": answer.blockers,
        "dependency_late": answer.dependency_late,
    }


def _new_readings(
    session: Session,
    initiative: Initiative,
    owner: Person,
    kpi_values: Mapping[int, float],
    today: date,
    now: datetime,
) -> list[tuple[KpiReading, str]]:
    """Readings to append: a value equal to today's pulse reading is a repeat, not a new fact."""
    if not kpi_values:
        return []
    assert initiative.id is not None
    linked = {kpi.id: kpi for kpi in plan.linked_kpis(session=session, initiative_id=initiative.id)}
    latest = plan.latest_readings(session=session, kpi_ids=kpi_values)
    readings = []
    for kpi_id, value in kpi_values.items():
        kpi = linked.get(kpi_id)
        if kpi is None:
            raise UserError(f"That KPI is not linked to {initiative.title}.")
        if not math.isfinite(value):
            raise UserError(f"The value for {kpi.name} must be a finite number.")
        last = latest.get(kpi_id)
        if (
            last is not None
            and last.source == "pulse"
            and last.as_of == today
            and last.value == value
        ):
            continue
        reading = KpiReading(
            kpi_id=kpi_id,
            value=value,
            as_of=today,
            source="pulse",
            recorded_by_id=owner.id,
            recorded_at=now,
        )
        readings.append((reading, kpi.key))
    return readings


def _milestone_changes(
    session: Session,
    initiative: Initiative,
    updates: Mapping[int, MilestoneUpdate],
    today: date,
) -> list[tuple[Milestone, MilestoneUpdate]]:
    """Updates that change something; marking a done milestone done again is a repeat."""
    if not updates:
        return []
    assert initiative.id is not None
    milestones = {
        m.id: m for m in plan.initiative_milestones(session=session, initiative_id=initiative.id)
    }
    changes: list[tuple[Milestone, MilestoneUpdate]] = []
    for milestone_id, update in updates.items():
        milestone = milestones.get(milestone_id)
        if milestone is None:
            raise UserError(f"That milestone is not part of {initiative.title}.")
        if not isinstance(update, date):
            if milestone.status != MilestoneStatus.DONE:
                changes.append((milestone, DONE))
            continue
        if milestone.status != MilestoneStatus.OPEN:
            raise UserError(f"{milestone.title} is already {milestone.status}.")
        if update < today:
            raise UserError(f"The expected date for {milestone.title} is in the past.")
        if milestone.expected_due != update:
            changes.append((milestone, update))
    return changes


def _milestone_state(milestone: Milestone) -> dict[str, Any]:
    return {
        "status": milestone.status,
        "expected_due": milestone.expected_due.isoformat() if milestone.expected_due else None,
        "completed_at": milestone.completed_at.isoformat() if milestone.completed_at else None,
    }


def pulses_of(session: Session, *, person: str, now: datetime) -> MyPulses:
    """`person`'s open pulses: sent and unanswered (with a count), and answered but still changeable."""
    row = people.person_by_slack_id(session=session, slack_id=person)
    if row is None or row.id is None:
        return MyPulses(pending=[], total_pending=0, answered=[])
    pending = pulses.pending_pulses(session=session, person_id=row.id, now=now, limit=PENDING_LIMIT)
    answered = [
        _listed(pulse, initiative, pulses.latest_answer(session=session, pulse_id=pulse.id))
        for pulse, initiative in pulses.answered_open_pulses(
            session=session, person_id=row.id, now=now, limit=ANSWERED_LIMIT
        )
        if pulse.id is not None
    ]
    return MyPulses(
        pending=[_listed(pulse, initiative, None) for pulse, initiative in pending.rows],
        total_pending=pending.total,
        answered=answered,
    )


def _listed(pulse: PulseRequest, initiative: Initiative, answer: PulseAnswer | None) -> ListedPulse:
    assert pulse.id is not None
    return ListedPulse(
        pulse_id=pulse.id,
        initiative_key=initiative.key,
        initiative_title=initiative.title,
        asked_at=pulse.sent_at or pulse.due_at,
        closes_at=pulse.next_due_at,
        status=answer.status if answer else None,
        answered_at=answer.answered_at if answer else None,
    )


def refresh_prompt(services: Services, *, pulse_id: int, now: datetime) -> bool:
    """Re-render the prompt DM holding this pulse, so it shows the answer and no stale buttons.

    The answer is already committed: if Slack refuses the update, the DM is stale but nothing is
    lost (it is logged, and the next answer or `/pulse` shows the truth).
    """
    with session_scope(services.engine) as session:
        pulse = pulses.pulse_by_id(session=session, pulse_id=pulse_id)
        if pulse is None or not pulse.channel_id or not pulse.message_ts:
            return False
        channel, ts = pulse.channel_id, pulse.message_ts
        shown = pulses.pulses_in_message(session=session, channel_id=channel, message_ts=ts)
        text, blocks = prompt_message(session, shown, now)
    try:
        services.slack.update_message(channel=channel, ts=ts, text=text, blocks=blocks)
    except SlackError as exc:
        log.warning("Could not update the prompt of pulse %s: %s", pulse_id, exc.code)
        return False
    return True
