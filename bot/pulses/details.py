"""The "Add details" modal of a pulse: building the form and reading a submission into an answer."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.errors import UserError
from bot.health import plan_today
from bot.problems import Problem, problem
from bot.pulses.answers import answer_context, check_can_answer
from bot.pulses.rules import (
    BLOCKERS_MAX,
    DONE,
    Answer,
    AnswerProblem,
    MilestoneUpdate,
    answer_problems,
    expected_field,
    kpi_field,
    parse_confidence,
    parse_date,
    parse_number,
)
from bot.row_ids import is_row_id, row_id_in
from bot.work.progress import milestone_burnups
from storage import pulses as queries
from storage.dependencies import open_dependencies_of
from storage.models import DependencyState
from storage.plan import latest_readings, linked_kpis, open_milestones, plan_timezone
from templates import Trusted, render_json
from templates.ids import PulseDetailsIds as Ids

# A modal holds 100 blocks: 7 fixed ones, one per KPI, one per milestone plus the "done" picker.
MAX_KPIS = 40
MAX_MILESTONES = 40
MAX_DEPENDENCIES = 10  # Block Kit: a checkboxes element holds at most 10 options


def metadata_for(pulse_id: int, dependency_ids: Sequence[int] = ()) -> str:
    """The pulse a form is about, and the dependencies it listed (unticking one means "not late")."""
    metadata: dict[str, Any] = {"pulse_id": pulse_id}
    if dependency_ids:
        metadata["dependency_ids"] = list(dependency_ids)
    return json.dumps(metadata)


def _metadata(private_metadata: str | None) -> dict[str, Any]:
    try:
        metadata = json.loads(private_metadata or "")
    except (ValueError, TypeError):
        return {}
    return metadata if isinstance(metadata, dict) else {}


def pulse_id_from(private_metadata: str | None) -> int:
    """The pulse a submitted modal is about; anything unreadable is a stale or forged view."""
    pulse_id = _metadata(private_metadata).get("pulse_id")
    if not is_row_id(pulse_id):
        raise UserError(problem(AnswerProblem.FORM_OUT_OF_DATE))
    return pulse_id


def listed_dependencies(private_metadata: str | None) -> list[int]:
    """The dependencies the submitted form listed (anything malformed is ignored)."""
    listed = _metadata(private_metadata).get("dependency_ids")
    if not isinstance(listed, list):
        return []
    return [i for i in listed if is_row_id(i)]


def loading_view(pulse_id: int) -> dict[str, Any]:
    """A view cheap enough to open inside the trigger_id's 3 seconds, before any query runs."""
    return dict(
        render_json(
            "blocks/pulse_details_loading.json.j2", ids=Ids, metadata=metadata_for(pulse_id)
        )
    )


def message_view(message: Trusted) -> dict[str, Any]:
    """The modal saying why the form cannot be shown; `message` is mrkdwn already worded and escaped."""
    return dict(render_json("blocks/pulse_details_message.json.j2", ids=Ids, message=message))


def details_view(session: Session, *, pulse_id: int, person: str, now: datetime) -> dict[str, Any]:
    """The full form, pre-filled with the current answer; a UserError if `person` may not answer."""
    pulse, initiative, _owner = check_can_answer(session, pulse_id=pulse_id, person=person, now=now)
    assert initiative.id is not None
    kpis = linked_kpis(session=session, initiative_id=initiative.id)
    readings = latest_readings(session=session, kpi_ids=[k.id for k in kpis if k.id])
    milestones = open_milestones(session=session, initiative_id=initiative.id)
    work = milestone_burnups(
        session, milestones, now, plan_today(now, plan_timezone(session=session))
    )
    dependencies = open_dependencies_of(session=session, initiative_id=initiative.id)
    shown = dependencies[:MAX_DEPENDENCIES]
    current = queries.latest_answer(session=session, pulse_id=pulse_id)
    return dict(
        render_json(
            "blocks/pulse_details.json.j2",
            ids=Ids,
            metadata=metadata_for(pulse_id, [d.id for d, _ in shown if d.id is not None]),
            initiative_title=initiative.title,
            closes_at=pulse.next_due_at,
            current={
                "status": current.status if current else None,
                "confidence": current.confidence if current else None,
                "blockers": current.blockers if current else None,
                "dependency_late": current.dependency_late if current else False,
            },
            kpis=[
                {
                    "block_id": kpi_field(kpi.id or 0),
                    "name": kpi.name,
                    "unit": kpi.unit,
                    "target": kpi.target,
                    "due": kpi.due,
                    "last_value": readings[kpi.id].value if kpi.id in readings else None,
                    "last_as_of": readings[kpi.id].as_of if kpi.id in readings else None,
                }
                for kpi in kpis[:MAX_KPIS]
            ],
            milestones=[
                {
                    "id": milestone.id,
                    "block_id": expected_field(milestone.id or 0),
                    "title": milestone.title,
                    "due": milestone.due,
                    "expected_due": milestone.expected_due,
                    "work": work.get(milestone.id or 0),
                }
                for milestone in milestones[:MAX_MILESTONES]
            ],
            dependencies=[
                {
                    "id": dependency.id,
                    "need": dependency.need,
                    "provider": team.name,
                    "needed_by": dependency.needed_by,
                    "late": dependency.state == DependencyState.AT_RISK,
                }
                for dependency, team in shown
            ],
            more_kpis=max(len(kpis) - MAX_KPIS, 0),
            more_milestones=max(len(milestones) - MAX_MILESTONES, 0),
            blockers_max=BLOCKERS_MAX,
        )
    )


def read_details(
    session: Session,
    *,
    pulse_id: int,
    person: str,
    values: Mapping[str, Mapping[str, Any]],
    now: datetime,
    listed: Sequence[int] = (),
) -> Answer:
    """Turn `view.state.values` into an Answer, or raise a UserError naming every bad field.

    What cannot be read (not a number, not a date) and what breaks an answer rule (the same
    rules `record_answer` applies) are reported together, each at its block. `listed` are the
    dependencies the form offered (`listed_dependencies`): one left unticked is not late.
    """
    try:
        _pulse, initiative, owner = check_can_answer(
            session, pulse_id=pulse_id, person=person, now=now
        )
    except UserError as refused:
        # About the whole form (not the owner, period over): shown on its first field.
        located = (p if p.field else p.at(Ids.STATUS_BLOCK) for p in refused.problems)
        raise type(refused)(*located) from None
    unreadable: list[Problem] = []

    status = _selected(values, Ids.STATUS_BLOCK, Ids.STATUS)
    confidence, found = parse_confidence(_selected(values, Ids.CONFIDENCE_BLOCK, Ids.CONFIDENCE))
    unreadable += found

    kpi_values: dict[int, float] = {}
    for block_id, kpi_id in _suffixed_blocks(values, Ids.KPI_BLOCK_PREFIX):
        text = _element(values, block_id, Ids.KPI).get("value")
        number, found = (
            parse_number(str(text), kpi_field(kpi_id)) if text is not None else (None, [])
        )
        unreadable += found
        if number is not None:
            kpi_values[kpi_id] = number

    done = _ticked(_element(values, Ids.DONE_BLOCK, Ids.DONE))
    milestone_updates: dict[int, MilestoneUpdate] = dict.fromkeys(done, DONE)
    for block_id, milestone_id in _suffixed_blocks(values, Ids.EXPECTED_BLOCK_PREFIX):
        chosen = _element(values, block_id, Ids.EXPECTED).get("selected_date")
        if not chosen:
            continue
        expected, found = parse_date(str(chosen), expected_field(milestone_id))
        unreadable += found
        if milestone_id in done and expected is not None:
            unreadable.append(problem(AnswerProblem.DONE_AND_DATE, expected_field(milestone_id)))
        elif expected is not None:
            milestone_updates[milestone_id] = expected

    blockers = _element(values, Ids.BLOCKERS_BLOCK, Ids.BLOCKERS).get("value")
    late = _element(values, Ids.DEPENDENCY_LATE_BLOCK, Ids.DEPENDENCY_LATE)
    ticked = _ticked(late)
    reports = {dependency_id: False for dependency_id in listed}
    reports.update(dict.fromkeys(ticked, True))
    answer = Answer(
        status=status or "",
        confidence=confidence,
        kpi_values=kpi_values,
        milestone_updates=milestone_updates,
        blockers=str(blockers).strip() or None if blockers is not None else None,
        dependency_late=bool(ticked),
        dependency_reports=reports,
    )
    problems = unreadable + answer_problems(answer, answer_context(session, initiative, owner, now))
    if problems:
        raise UserError(*problems)
    return answer


def _element(values: Mapping[str, Mapping[str, Any]], block_id: str, action_id: str) -> Any:
    element = (values.get(block_id) or {}).get(action_id)
    return element if isinstance(element, dict) else {}


def _selected(values: Mapping[str, Mapping[str, Any]], block_id: str, action_id: str) -> str | None:
    option = _element(values, block_id, action_id).get("selected_option")
    if isinstance(option, dict) and option.get("value") is not None:
        return str(option["value"])
    return None


def _suffixed_blocks(values: Mapping[str, Any], prefix: str) -> list[tuple[str, int]]:
    """Block IDs like `<prefix><row id>`, with the row id; a non-numeric suffix is ignored."""
    found = []
    for block_id in values:
        suffix = block_id.removeprefix(prefix)
        row_id = row_id_in(suffix) if suffix != block_id else None
        if row_id is not None:
            found.append((block_id, row_id))
    return found


def _ticked(element: Mapping[str, Any]) -> set[int]:
    """The row ids of a checkbox group's ticked options (anything else is ignored)."""
    options = element.get("selected_options")
    ticked = set()
    for option in options if isinstance(options, list) else []:
        row_id = row_id_in(str(option.get("value"))) if isinstance(option, dict) else None
        if row_id is not None:
            ticked.add(row_id)
    return ticked
