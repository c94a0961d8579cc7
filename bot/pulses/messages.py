"""Pulse messages rendered from database state: the prompt DM, the reminder and the escalation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.health import plan_today
from bot.work.burnup import Burnup
from bot.work.progress import initiative_work
from storage import pulses as queries
from storage.models import (
    Initiative,
    Objective,
    Person,
    PulseAnswer,
    PulseRequest,
)
from storage.people import people_by_ids
from storage.plan import initiatives_by_ids, objectives_by_ids, plan_timezone
from templates import render_json, render_mrkdwn
from templates.ids import PulseIds

# One header block plus three blocks per initiative must stay within Slack's 50 blocks a message.
MAX_PULSES_PER_MESSAGE = 15

Blocks = list[dict[str, Any]]


@dataclass(frozen=True)
class Rendered:
    text: str
    blocks: Blocks


def _section(
    pulse: PulseRequest,
    initiative: Initiative,
    objective: Objective | None,
    answer: PulseAnswer | None,
    answered_by: Person | None,
    now: datetime,
    work: Sequence[tuple[str, Burnup]] = (),
) -> dict[str, Any]:
    shown_answer = None
    if answer is not None:
        shown_answer = {
            "status": answer.status,  # worded by the template (blocks/pulse_status.j2)
            "confidence": answer.confidence,
            "by": answered_by.slack_id if answered_by else None,
            "at": answer.answered_at,
        }
    ends = pulse.next_due_at or pulse.due_at
    return {
        "pulse_id": pulse.id,
        "title": initiative.title,
        "key": initiative.key,
        "objective": objective.title if objective else None,
        "ends": ends,
        "closed": ends is not None and ends <= now,
        "answer": shown_answer,
        "work": [{"title": title, "w": burn} for title, burn in work],
    }


def render_prompt(sections: Sequence[Mapping[str, Any]]) -> Rendered:
    """The prompt DM for already-built sections (the fan-out builds them without extra queries)."""
    context = {"sections": list(sections), "ids": PulseIds}
    return Rendered(
        text=render_mrkdwn("blocks/pulse_prompt_text.txt.j2", **context),
        blocks=render_json("blocks/pulse_prompt.json.j2", **context),
    )


def new_prompt_sections(
    pulses: Sequence[PulseRequest],
    initiatives: Mapping[int, Initiative],
    objectives: Mapping[int, Objective],
    now: datetime,
    work: Mapping[int, Sequence[tuple[str, Burnup]]] | None = None,
) -> list[dict[str, Any]]:
    """Sections of a prompt about to be sent: nothing is answered yet. `work` is each
    initiative's linked tracker work, shown so the owner answers with the numbers in front."""
    sections = []
    for pulse in pulses:
        initiative = initiatives[pulse.initiative_id]
        objective = objectives.get(initiative.objective_id) if initiative.objective_id else None
        own = (work or {}).get(pulse.initiative_id, ())
        sections.append(_section(pulse, initiative, objective, None, None, now, own))
    return sections


def prompt_message(
    session: Session, pulses: Sequence[PulseRequest], now: datetime
) -> tuple[str, Blocks]:
    """Re-render a prompt DM from its pulse rows: answered sections show the answer, no buttons.

    `pulses` are the rows sharing one message (`storage.pulses.pulses_in_message`).
    """
    ordered = sorted(pulses, key=lambda pulse: pulse.id or 0)
    ids = [pulse.id for pulse in ordered if pulse.id is not None]
    initiatives = initiatives_by_ids(
        session=session, initiative_ids=[p.initiative_id for p in ordered]
    )
    objectives = objectives_by_ids(
        session=session,
        objective_ids=[i.objective_id for i in initiatives.values() if i.objective_id],
    )
    answers = queries.latest_answers(session=session, pulse_ids=ids)
    people = people_by_ids(session=session, person_ids=[a.answered_by_id for a in answers.values()])
    work = initiative_work(
        session, initiatives, now, plan_today(now, plan_timezone(session=session))
    )
    sections = []
    for pulse in ordered:
        initiative = initiatives[pulse.initiative_id]
        answer = answers.get(pulse.id) if pulse.id is not None else None
        sections.append(
            _section(
                pulse,
                initiative,
                objectives.get(initiative.objective_id) if initiative.objective_id else None,
                answer,
                people.get(answer.answered_by_id) if answer and answer.answered_by_id else None,
                now,
                work.get(pulse.initiative_id, ()),
            )
        )
    rendered = render_prompt(sections)
    return rendered.text, rendered.blocks


def reminder_message(titles: Sequence[str], ends: datetime) -> Rendered:
    context = {"sections": [{"title": title} for title in titles], "ends": ends}
    return Rendered(
        text=render_mrkdwn("blocks/pulse_reminder_text.txt.j2", **context),
        blocks=render_json("blocks/pulse_reminder.json.j2", **context),
    )


def escalation_message(items: Sequence[Mapping[str, Any]]) -> Rendered:
    """Items: title, key, owner (Slack ID), sent_at, reminded_at, ends."""
    context = {"items": list(items)}
    return Rendered(
        text=render_mrkdwn("blocks/pulse_escalation_text.txt.j2", **context),
        blocks=render_json("blocks/pulse_escalation.json.j2", **context),
    )
