"""Recording an owner's answer to a pulse: who may answer, until when, and what it changes in the plan.

`record_answer` is check (who, until when, `rules.answer_problems`) → changes (what the answer
writes, computed from what is stored) → save (storage/ writes it, with its audit entries).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from bot import audit
from bot.dependencies.changes import change_state
from bot.dependencies.rules import DependencyAction
from bot.errors import NotAllowed, NotFound, UserError
from bot.problems import problem
from bot.pulses.messages import prompt_message
from bot.pulses.rules import (
    DONE,
    Answer,
    AnswerContext,
    AnswerProblem,
    MilestoneUpdate,
    answer_problems,
)
from bot.services import Services
from bot.slack.errors import SlackError
from bot.timezones import local_date, person_zone
from storage import people, plan, pulses
from storage.db import session_scope
from storage.dependencies import open_dependencies_of
from storage.models import (
    Initiative,
    KpiReading,
    Milestone,
    MilestoneStatus,
    Person,
    PulseAnswer,
    PulseRequest,
)
from templates.ids import PulseDetailsIds

log = logging.getLogger(__name__)

# Within a message's 50 blocks: two per pending pulse, one per answered pulse, a few headings.
PENDING_LIMIT = 20
ANSWERED_LIMIT = 5


@dataclass(frozen=True)
class RecordedAnswer:
    """What `record_answer` did; `created` is False when it repeated the current answer exactly."""

    pulse_id: int
    answer_id: int
    created: bool
    dependencies_changed: tuple[int, ...] = ()  # their request messages must show it


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


# --- check ------------------------------------------------------------------------------------


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
        raise NotFound(problem(AnswerProblem.PULSE_GONE))
    initiative = plan.initiative_by_id(session=session, initiative_id=pulse.initiative_id)
    owner = (
        people.person_by_id(session=session, person_id=initiative.owner_id)
        if initiative is not None
        else None
    )
    if initiative is None or owner is None or owner.slack_id != person:
        title = initiative.title if initiative is not None else None
        raise NotAllowed(problem(AnswerProblem.NOT_OWNER, initiative=title))
    if pulse.next_due_at is not None and now >= pulse.next_due_at:
        raise UserError(problem(AnswerProblem.PERIOD_CLOSED, initiative=initiative.title))
    return pulse, initiative, owner


def answer_context(
    session: Session, initiative: Initiative, owner: Person, now: datetime
) -> AnswerContext:
    """What the rules check an answer against, as stored now."""
    assert initiative.id is not None
    kpis = plan.linked_kpis(session=session, initiative_id=initiative.id)
    milestones = plan.initiative_milestones(session=session, initiative_id=initiative.id)
    dependencies = open_dependencies_of(session=session, initiative_id=initiative.id)
    return AnswerContext(
        initiative=initiative,
        kpis={kpi.id: kpi for kpi in kpis if kpi.id is not None},
        milestones={m.id: m for m in milestones if m.id is not None},
        today=local_date(now, person_zone(owner.tz, plan.plan_timezone(session=session))),
        dependencies={d.id: d for d, _team in dependencies if d.id is not None},
    )


def check_answer(answer: Answer, context: AnswerContext) -> None:
    """Raises a UserError naming everything wrong with `answer` (each problem at its modal block)."""
    problems = answer_problems(answer, context)
    if problems:
        raise UserError(*problems)


# --- record -----------------------------------------------------------------------------------


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
    dependency_reports: Mapping[int, bool] | None = None,
    now: datetime,
) -> RecordedAnswer:
    """Record `person`'s (a Slack user ID) answer; the newest answer is current, older ones stay.

    Repeating the current answer exactly (a double click, a retried request) writes nothing, so
    it cannot change the outcome. KPI values are keyed by KPI id, milestone updates by milestone
    id, late (True) or no longer late (False) dependencies by dependency id.
    """
    reports = dict(dependency_reports or {})
    answer = Answer(
        status=status,
        confidence=confidence,
        kpi_values=dict(kpi_values or {}),
        milestone_updates=dict(milestone_updates or {}),
        blockers=blockers,
        dependency_late=dependency_late or any(reports.values()),
        dependency_reports=reports,
    )
    return _record(session, pulse_id=pulse_id, person=person, given=answer, now=now)


def record_details(
    session: Session, *, pulse_id: int, person: str, answer: Answer, now: datetime
) -> RecordedAnswer:
    """Record the answer the "Add details" modal read (`details.read_details`)."""
    return _record(session, pulse_id=pulse_id, person=person, given=answer, now=now)


def record_status(
    session: Session, *, pulse_id: int, person: str, status: str, now: datetime
) -> RecordedAnswer:
    """A quick button: the status changes, and the rest of the current answer stays as it was.

    The new answer row repeats the current one's confidence, blockers and late-dependency flag;
    its KPI readings and milestone changes are rows of their own and stay untouched.
    """
    return _record(session, pulse_id=pulse_id, person=person, given=status, now=now)


def _record(
    session: Session,
    *,
    pulse_id: int,
    person: str,
    given: Answer | str,  # a bare status: a quick button, the current answer's details stay
    now: datetime,
) -> RecordedAnswer:
    pulse, initiative, owner = check_can_answer(
        session, pulse_id=pulse_id, person=person, now=now, lock=True
    )
    assert pulse.id is not None
    # Read under the pulse row's lock, so details being saved by another click are not lost.
    previous = pulses.latest_answer(session=session, pulse_id=pulse.id)
    answer = _kept_details(given, previous) if isinstance(given, str) else given
    context = answer_context(session, initiative, owner, now)
    check_answer(answer, context)
    latest = plan.latest_readings(session=session, kpi_ids=answer.kpi_values)
    changes = answer_changes(
        answer,
        context,
        pulse=pulse,
        owner=owner,
        previous=previous,
        latest_readings=latest,
        quick=isinstance(given, str),
        now=now,
    )
    # Each dependency change counts once of itself (a repeat is no change), answer or not.
    moved = _report_dependencies(session, answer, context, owner=owner, person=person, now=now)
    if changes.answer is None:
        assert previous is not None and previous.id is not None
        return RecordedAnswer(
            pulse_id=pulse.id, answer_id=previous.id, created=False, dependencies_changed=moved
        )
    answer_id = save_changes(session, changes, actor=f"slack:{person}", now=now)
    return RecordedAnswer(
        pulse_id=pulse.id, answer_id=answer_id, created=True, dependencies_changed=moved
    )


def _report_dependencies(
    session: Session,
    answer: Answer,
    context: AnswerContext,
    *,
    owner: Person,
    person: str,
    now: datetime,
) -> tuple[int, ...]:
    """The owner's late dependencies become at risk (the blockers as the note), through the same
    rule as the provider's buttons; one the owner unticked is no longer at risk."""
    changed = []
    for dependency_id, late in sorted(answer.dependency_reports.items()):
        dependency = context.dependencies.get(dependency_id)
        if dependency is None:  # delivered or removed since the form was opened: nothing to do
            continue
        outcome = change_state(
            session,
            dependency=dependency,
            action=DependencyAction.REPORT_LATE if late else DependencyAction.CLEAR_LATE,
            actor=f"slack:{person}",
            by_person_id=owner.id,
            now=now,
            reason=answer.blockers.strip() or None if late and answer.blockers else None,
            field=PulseDetailsIds.DEPENDENCY_LATE_BLOCK,
        )
        if outcome.changed:
            changed.append(dependency_id)
    return tuple(changed)


def _kept_details(status: str, previous: PulseAnswer | None) -> Answer:
    """A new status with the current answer's own fields (its readings and milestones are rows)."""
    if previous is None:
        return Answer(status=status)
    return Answer(
        status=status,
        confidence=previous.confidence,
        blockers=previous.blockers,
        dependency_late=previous.dependency_late,
    )


# --- changes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MilestoneChange:
    milestone_id: int
    update: MilestoneUpdate  # a new expected date, or done


@dataclass(frozen=True)
class AnswerChanges:
    """What recording an answer writes; `answer` is None when it repeats the current one exactly."""

    answer: PulseAnswer | None
    readings: list[KpiReading]
    milestones: list[MilestoneChange]
    audit: list[audit.Change]


def answer_changes(
    answer: Answer,
    context: AnswerContext,
    *,
    pulse: PulseRequest,
    owner: Person,
    previous: PulseAnswer | None,
    latest_readings: Mapping[int, KpiReading],
    quick: bool,
    now: datetime,
) -> AnswerChanges:
    """The rows a checked answer adds or changes, and the audit entries that say so."""
    assert pulse.id is not None and owner.id is not None
    fields: dict[str, Any] = {
        "status": answer.status,
        "confidence": answer.confidence,
        # Whitespace is no blocker: stored stripped, or not at all.
        "blockers": answer.blockers.strip() or None if answer.blockers is not None else None,
        "dependency_late": answer.dependency_late,
    }
    readings = _new_readings(answer, context, owner, latest_readings, now)
    milestones = _milestone_changes(answer, context)
    unchanged = (
        previous is not None
        and previous.answered_by_id == owner.id
        and _answer_fields(previous) == fields
    )
    if unchanged and not readings and not milestones:
        return AnswerChanges(answer=None, readings=[], milestones=[], audit=[])

    entries = [
        audit.Change(
            "reading",
            "kpi",
            context.kpis[reading.kpi_id].key,
            None,
            {"value": reading.value, "as_of": reading.as_of.isoformat(), "source": "pulse"},
        )
        for reading in readings
    ]
    for change in milestones:
        milestone = context.milestones[change.milestone_id]
        entries.append(
            audit.Change(
                "update",
                "milestone",
                milestone.key,
                _milestone_state(milestone),
                _milestone_state(milestone, change.update, now),
            )
        )
    if quick:  # the status is all that was given, and all that changed
        before = {"status": previous.status} if previous is not None else None
        after: dict[str, Any] = {"status": answer.status}
    else:
        before = _answer_fields(previous) if previous is not None else None
        after = {
            **fields,
            "kpi_values": {context.kpis[r.kpi_id].key: r.value for r in readings},
            "milestones": {
                context.milestones[c.milestone_id].key: c.update.isoformat()
                if isinstance(c.update, date)
                else DONE
                for c in milestones
            },
        }
    entries.append(
        audit.Change("answer", "pulse", f"{context.initiative.key}@{pulse.period}", before, after)
    )
    row = PulseAnswer(pulse_request_id=pulse.id, answered_by_id=owner.id, answered_at=now, **fields)
    return AnswerChanges(answer=row, readings=readings, milestones=milestones, audit=entries)


def _answer_fields(answer: PulseAnswer) -> dict[str, Any]:
    return {
        "status": answer.status,
        "confidence": answer.confidence,
        "blockers": answer.blockers,
        "dependency_late": answer.dependency_late,
    }


def _new_readings(
    answer: Answer,
    context: AnswerContext,
    owner: Person,
    latest: Mapping[int, KpiReading],
    now: datetime,
) -> list[KpiReading]:
    """Readings to append: a value equal to today's pulse reading is a repeat, not a new fact."""
    readings = []
    for kpi_id, value in answer.kpi_values.items():
        last = latest.get(kpi_id)
        if (
            last is not None
            and last.source == "pulse"
            and last.as_of == context.today
            and last.value == value
        ):
            continue
        readings.append(
            KpiReading(
                kpi_id=kpi_id,
                value=value,
                as_of=context.today,
                source="pulse",
                recorded_by_id=owner.id,
                recorded_at=now,
            )
        )
    return readings


def _milestone_changes(answer: Answer, context: AnswerContext) -> list[MilestoneChange]:
    """Updates that change something; marking a done milestone done again is a repeat."""
    changes = []
    for milestone_id, update in answer.milestone_updates.items():
        milestone = context.milestones[milestone_id]
        repeat = (
            milestone.expected_due == update
            if isinstance(update, date)
            else milestone.status == MilestoneStatus.DONE
        )
        if not repeat:
            changes.append(MilestoneChange(milestone_id, update))
    return changes


def _milestone_state(
    milestone: Milestone, update: MilestoneUpdate | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The milestone as stored, or as it will be once `update` is saved (done at `now`)."""
    status, expected, completed = milestone.status, milestone.expected_due, milestone.completed_at
    if isinstance(update, date):
        expected = update
    elif update == DONE:
        status, completed = MilestoneStatus.DONE, now
    return {
        "status": status,
        "expected_due": expected.isoformat() if expected else None,
        "completed_at": completed.isoformat() if completed else None,
    }


# --- save -------------------------------------------------------------------------------------


def save_changes(session: Session, changes: AnswerChanges, *, actor: str, now: datetime) -> int:
    """Write what `answer_changes` computed, in the caller's transaction; the new answer's id."""
    assert changes.answer is not None
    answer_id = pulses.save_answer(session=session, answer=changes.answer)
    plan.save_readings(session=session, readings=changes.readings)
    for change in changes.milestones:
        if isinstance(change.update, date):
            plan.set_expected_due(
                session=session, milestone_id=change.milestone_id, expected_due=change.update
            )
        else:
            plan.mark_milestone_done(session=session, milestone_id=change.milestone_id, at=now)
    audit.record_many(session, actor=actor, now=now, changes=changes.audit)
    return answer_id


# --- what the owner sees ----------------------------------------------------------------------


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
