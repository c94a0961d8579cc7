"""The "Add details" modal of a pulse: building the form and reading a submission into an answer."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from bot.errors import UserError
from bot.pulses.answers import BLOCKERS_MAX, DONE, MilestoneUpdate, check_can_answer
from bot.timezones import local_date, person_zone
from storage import pulses as queries
from storage.models import PulseStatus
from storage.plan import latest_readings, linked_kpis, open_milestones, plan_timezone
from templates import render_json
from templates.ids import PulseDetailsIds as Ids

# A modal holds 100 blocks: 7 fixed ones, one per KPI, one per milestone plus the "done" picker.
MAX_KPIS = 40
MAX_MILESTONES = 40
NUMBER_TEXT_MAX = 40


class InvalidDetails(Exception):
    """The submission has field errors, keyed by block_id, for `response_action: errors`."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Details:
    """A valid submission, in the shape `record_answer` takes."""

    status: str
    confidence: int | None = None
    kpi_values: dict[int, float] = field(default_factory=dict)
    milestone_updates: dict[int, MilestoneUpdate] = field(default_factory=dict)
    blockers: str | None = None
    dependency_late: bool = False


def metadata_for(pulse_id: int) -> str:
    return json.dumps({"pulse_id": pulse_id})


def pulse_id_from(private_metadata: str | None) -> int:
    """The pulse a submitted modal is about; anything unreadable is a stale or forged view."""
    try:
        pulse_id = json.loads(private_metadata or "")["pulse_id"]
    except (ValueError, TypeError, KeyError):
        raise UserError("This form is out of date; open it again from the pulse message.") from None
    if not isinstance(pulse_id, int):
        raise UserError("This form is out of date; open it again from the pulse message.")
    return pulse_id


def loading_view(pulse_id: int) -> dict[str, Any]:
    """A view cheap enough to open inside the trigger_id's 3 seconds, before any query runs."""
    return dict(
        render_json(
            "blocks/pulse_details_loading.json.j2", ids=Ids, metadata=metadata_for(pulse_id)
        )
    )


def message_view(message: str) -> dict[str, Any]:
    return dict(render_json("blocks/pulse_details_message.json.j2", ids=Ids, message=message))


def details_view(session: Session, *, pulse_id: int, person: str, now: datetime) -> dict[str, Any]:
    """The full form, pre-filled with the current answer; a UserError if `person` may not answer."""
    pulse, initiative, _owner = check_can_answer(session, pulse_id=pulse_id, person=person, now=now)
    assert initiative.id is not None
    kpis = linked_kpis(session=session, initiative_id=initiative.id)
    readings = latest_readings(session=session, kpi_ids=[k.id for k in kpis if k.id])
    milestones = open_milestones(session=session, initiative_id=initiative.id)
    current = queries.latest_answer(session=session, pulse_id=pulse_id)
    return dict(
        render_json(
            "blocks/pulse_details.json.j2",
            ids=Ids,
            metadata=metadata_for(pulse_id),
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
                    "block_id": f"{Ids.KPI_BLOCK_PREFIX}{kpi.id}",
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
                    "block_id": f"{Ids.EXPECTED_BLOCK_PREFIX}{milestone.id}",
                    "title": milestone.title,
                    "due": milestone.due,
                    "expected_due": milestone.expected_due,
                }
                for milestone in milestones[:MAX_MILESTONES]
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
) -> Details:
    """Turn `view.state.values` into Details, or raise InvalidDetails naming every bad field."""
    _pulse, _initiative, owner = check_can_answer(
        session, pulse_id=pulse_id, person=person, now=now
    )
    today = local_date(now, person_zone(owner.tz, plan_timezone(session=session)))
    errors: dict[str, str] = {}

    status = _selected(values, Ids.STATUS_BLOCK, Ids.STATUS)
    if status not in set(PulseStatus):
        errors[Ids.STATUS_BLOCK] = "Choose on track, at risk or off track."
    confidence_text = _selected(values, Ids.CONFIDENCE_BLOCK, Ids.CONFIDENCE)
    confidence = None
    if confidence_text is not None:
        if confidence_text in {"1", "2", "3", "4", "5"}:
            confidence = int(confidence_text)
        else:
            errors[Ids.CONFIDENCE_BLOCK] = "Confidence goes from 1 to 5."

    kpi_values: dict[int, float] = {}
    for block_id, kpi_id in _suffixed_blocks(values, Ids.KPI_BLOCK_PREFIX):
        text = _element(values, block_id, Ids.KPI).get("value")
        if text is None or not str(text).strip():
            continue
        number, problem = _parse_number(str(text))
        if problem:
            errors[block_id] = problem
        else:
            kpi_values[kpi_id] = number

    done = {
        int(option["value"])
        for option in _element(values, Ids.DONE_BLOCK, Ids.DONE).get("selected_options") or []
        if str(option.get("value", "")).isdigit()
    }
    milestone_updates: dict[int, MilestoneUpdate] = dict.fromkeys(done, DONE)
    for block_id, milestone_id in _suffixed_blocks(values, Ids.EXPECTED_BLOCK_PREFIX):
        chosen = _element(values, block_id, Ids.EXPECTED).get("selected_date")
        if not chosen:
            continue
        try:
            expected = date.fromisoformat(str(chosen))
        except ValueError:
            errors[block_id] = "Pick a date from the calendar."
            continue
        if milestone_id in done:
            errors[block_id] = "Either mark it done or give a date, not both."
        elif expected < today:
            errors[block_id] = "That date is in the past; pick today or a later date."
        else:
            milestone_updates[milestone_id] = expected

    blockers = _element(values, Ids.BLOCKERS_BLOCK, Ids.BLOCKERS).get("value")
    if blockers is not None and len(str(blockers)) > BLOCKERS_MAX:
        errors[Ids.BLOCKERS_BLOCK] = f"Keep it under {BLOCKERS_MAX} characters."
    late = _element(values, Ids.DEPENDENCY_LATE_BLOCK, Ids.DEPENDENCY_LATE)

    if errors:
        raise InvalidDetails(errors)
    assert status is not None
    return Details(
        status=status,
        confidence=confidence,
        kpi_values=kpi_values,
        milestone_updates=milestone_updates,
        blockers=str(blockers).strip() or None if blockers is not None else None,
        dependency_late=bool(late.get("selected_options")),
    )


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
        if suffix != block_id and suffix.isdigit():
            found.append((block_id, int(suffix)))
    return found


def _parse_number(text: str) -> tuple[float, str | None]:
    """A finite decimal number, or the sentence that explains why not."""
    cleaned = text.strip()
    if len(cleaned) > NUMBER_TEXT_MAX:
        return 0.0, "That number is too long."
    try:
        number = float(cleaned)
    except ValueError:
        return 0.0, "Enter a number, like 42 or 12.5."
    if not math.isfinite(number):
        return 0.0, "Enter a finite number, like 42 or 12.5."
    return number, None
