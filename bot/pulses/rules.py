"""The rules of a pulse answer, written once: the "Add details" modal and `record_answer` both call them.

Each rule returns problems (never sentences) located at the modal block the value came from, so
the modal shows them as field errors and any other caller as an ephemeral reply; the words are in
templates/problems/.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from bot.problems import Problem, ProblemCode, problem
from storage.models import Dependency, Initiative, Kpi, Milestone, MilestoneStatus, PulseStatus
from templates.ids import PulseDetailsIds as Ids

DONE: Literal["done"] = "done"
MilestoneUpdate = date | Literal["done"]
CONFIDENCE_RANGE = range(1, 6)
BLOCKERS_MAX = 3000
NUMBER_TEXT_MAX = 40


class AnswerProblem(ProblemCode):
    """What can be wrong with answering a pulse check."""

    PULSE_GONE = "answer.pulse_gone"
    NOT_OWNER = "answer.not_owner"  # initiative
    PERIOD_CLOSED = "answer.period_closed"  # initiative
    FORM_OUT_OF_DATE = "answer.form_out_of_date"
    STATUS_CHOICE = "answer.status_choice"
    CONFIDENCE_RANGE = "answer.confidence_range"
    BLOCKERS_TOO_LONG = "answer.blockers_too_long"  # max
    NUMBER_TOO_LONG = "answer.number_too_long"
    NOT_A_NUMBER = "answer.not_a_number"
    NOT_FINITE = "answer.not_finite"  # kpi
    KPI_NOT_LINKED = "answer.kpi_not_linked"  # initiative
    NOT_A_DATE = "answer.not_a_date"
    DONE_AND_DATE = "answer.done_and_date"
    DATE_IN_PAST = "answer.date_in_past"  # milestone
    MILESTONE_NOT_OPEN = "answer.milestone_not_open"  # milestone, status
    MILESTONE_UNKNOWN = "answer.milestone_unknown"  # initiative
    DEPENDENCY_NOT_OPEN = "answer.dependency_not_open"  # initiative


@dataclass(frozen=True)
class Answer:
    """An owner's answer as given: a status and, from the modal, the details.

    KPI values are keyed by KPI id, milestone updates (an expected date, or done) by milestone id.
    """

    status: str
    confidence: int | None = None
    kpi_values: Mapping[int, float] = field(default_factory=dict)
    milestone_updates: Mapping[int, MilestoneUpdate] = field(default_factory=dict)
    blockers: str | None = None
    dependency_late: bool = False
    # Dependency id → late (True) or not late (False), for the dependencies the form listed.
    dependency_reports: Mapping[int, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerContext:
    """What an answer is checked against: the initiative's live KPIs and milestones, the owner's day."""

    initiative: Initiative
    kpis: Mapping[int, Kpi]  # linked to the initiative, by id
    milestones: Mapping[int, Milestone]  # the initiative's live milestones, by id
    today: date  # in the owner's timezone
    dependencies: Mapping[int, Dependency] = field(default_factory=dict)  # open ones, by id


def kpi_field(kpi_id: int) -> str:
    return f"{Ids.KPI_BLOCK_PREFIX}{kpi_id}"


def expected_field(milestone_id: int) -> str:
    return f"{Ids.EXPECTED_BLOCK_PREFIX}{milestone_id}"


def answer_problems(answer: Answer, context: AnswerContext) -> list[Problem]:
    """Every rule, over the whole answer: all that is wrong, at once."""
    return [
        *check_status(answer.status),
        *check_confidence(answer.confidence),
        *check_blockers(answer.blockers),
        *(
            found
            for kpi_id, value in answer.kpi_values.items()
            for found in check_kpi_value(kpi_id, value, context)
        ),
        *(
            found
            for milestone_id, update in answer.milestone_updates.items()
            for found in check_milestone_update(milestone_id, update, context)
        ),
        *check_late_dependencies(answer.dependency_reports, context),
    ]


def check_status(status: str | None) -> list[Problem]:
    if status not in set(PulseStatus):
        return [problem(AnswerProblem.STATUS_CHOICE, Ids.STATUS_BLOCK)]
    return []


def check_confidence(confidence: int | None) -> list[Problem]:
    if confidence is not None and confidence not in CONFIDENCE_RANGE:
        return [problem(AnswerProblem.CONFIDENCE_RANGE, Ids.CONFIDENCE_BLOCK)]
    return []


def check_blockers(blockers: str | None) -> list[Problem]:
    if blockers is not None and len(blockers) > BLOCKERS_MAX:
        return [problem(AnswerProblem.BLOCKERS_TOO_LONG, Ids.BLOCKERS_BLOCK, max=BLOCKERS_MAX)]
    return []


def check_kpi_value(kpi_id: int, value: float, context: AnswerContext) -> list[Problem]:
    kpi = context.kpis.get(kpi_id)
    if kpi is None:
        title = context.initiative.title
        return [problem(AnswerProblem.KPI_NOT_LINKED, kpi_field(kpi_id), initiative=title)]
    if not math.isfinite(value):
        return [problem(AnswerProblem.NOT_FINITE, kpi_field(kpi_id), kpi=kpi.name)]
    return []


def check_milestone_update(
    milestone_id: int, update: MilestoneUpdate, context: AnswerContext
) -> list[Problem]:
    """Done may be said of any live milestone (again: a repeat); a date only of an open one."""
    place = expected_field(milestone_id) if isinstance(update, date) else Ids.DONE_BLOCK
    milestone = context.milestones.get(milestone_id)
    if milestone is None:
        title = context.initiative.title
        return [problem(AnswerProblem.MILESTONE_UNKNOWN, place, initiative=title)]
    if not isinstance(update, date):
        return []
    if milestone.status != MilestoneStatus.OPEN:
        return [
            problem(
                AnswerProblem.MILESTONE_NOT_OPEN,
                place,
                milestone=milestone.title,
                status=milestone.status,
            )
        ]
    if update < context.today:
        return [problem(AnswerProblem.DATE_IN_PAST, place, milestone=milestone.title)]
    return []


def check_late_dependencies(reports: Mapping[int, bool], context: AnswerContext) -> list[Problem]:
    """Only the initiative's own open dependencies can be reported late (one the form listed
    may have been delivered since: not late is then simply nothing to do)."""
    if any(
        late and dependency_id not in context.dependencies
        for dependency_id, late in reports.items()
    ):
        title = context.initiative.title
        return [
            problem(AnswerProblem.DEPENDENCY_NOT_OPEN, Ids.DEPENDENCY_LATE_BLOCK, initiative=title)
        ]
    return []


# --- reading what was typed -------------------------------------------------------------------


def parse_confidence(text: str | None) -> tuple[int | None, list[Problem]]:
    """A picked confidence; anything but a whole number breaks the same rule as one out of range."""
    if text is None:
        return None, []
    if not (text.isascii() and text.isdigit()):
        return None, [problem(AnswerProblem.CONFIDENCE_RANGE, Ids.CONFIDENCE_BLOCK)]
    return int(text), []


def parse_number(text: str, place: str) -> tuple[float | None, list[Problem]]:
    """A typed KPI value; None when the box is empty. Finiteness is `check_kpi_value`'s to judge."""
    cleaned = text.strip()
    if not cleaned:
        return None, []
    if len(cleaned) > NUMBER_TEXT_MAX:
        return None, [problem(AnswerProblem.NUMBER_TOO_LONG, place)]
    try:
        return float(cleaned), []
    except ValueError:
        return None, [problem(AnswerProblem.NOT_A_NUMBER, place)]


def parse_date(text: str, place: str) -> tuple[date | None, list[Problem]]:
    """A picked date (ISO); the date picker sends nothing else unless the request was forged."""
    try:
        return date.fromisoformat(text), []
    except ValueError:
        return None, [problem(AnswerProblem.NOT_A_DATE, place)]
