"""The demo's scenario: what the scripted people do in the simulated quarter, read from a YAML file.

The file is data a user may edit (bot/planfile/northwind_scenario.yaml documents every field);
a file that cannot be read or does not fit is one plain sentence, before anything runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import UserError
from bot.planfile.example import HERE as EXAMPLE_DIR
from bot.problems import ProblemCode, problem

DEFAULT_SCENARIO = EXAMPLE_DIR / "northwind_scenario.yaml"

Hours = Annotated[float, Field(ge=0, le=24 * 14)]
Status = Literal["on_track", "at_risk", "off_track"]
Option = Literal["delay", "descope", "add_resources", "accept_risk"]
Confidence = Annotated[int, Field(ge=1, le=5)]


class ScenarioProblem(ProblemCode):
    """What can be wrong with `planpulse demo --scenario FILE`."""

    UNREADABLE = "scenario.unreadable"  # path, reason
    INVALID = "scenario.invalid"  # path, errors
    UNKNOWN = "scenario.unknown"  # path, what, names


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class InitiativeAnswers(_Part):
    status: Status | None = None
    confidence: Confidence | None = None


class Pulses(_Part):
    answer_after_hours: Hours = 3
    status: Status = "on_track"
    confidence: Confidence = 4
    initiatives: dict[str, InitiativeAnswers] = {}
    silent: list[str] = []
    kpi_drift: dict[str, float] = {}
    mark_done_within_days: Annotated[int, Field(ge=0, le=90)] = 7


class Dependencies(_Part):
    acknowledge_after_hours: Hours = 20
    deliver_on_needed_by: bool = True
    never_acknowledged: list[str] = []


class Framing(_Part):
    delay_days: Annotated[int, Field(ge=1, le=180)] = 14
    scope_cut: Annotated[str, Field(max_length=500)] = ""
    resources: Annotated[str, Field(max_length=500)] = ""


class Votes(_Part):
    after_hours: Hours = 5
    leaders: dict[str, Option] = {}


class KnockOn(_Part):
    answer_after_hours: Hours = 4


class Scenario(_Part):
    weeks: Annotated[int, Field(ge=1, le=26)] = 13
    tick_every_hours: Annotated[int, Field(ge=1, le=24)] = 6
    pulses: Pulses = Pulses()
    slips: list[str] = []
    dependencies: Dependencies = Dependencies()
    framing: Framing = Framing()
    votes: Votes = Votes()
    knock_on: KnockOn = KnockOn()


def _errors(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in item['loc']) or 'the file'}: {item['msg']}"
        for item in error.errors()
    ]


def load_scenario(path: Path) -> Scenario:
    """The scenario in `path`; a UserError naming the file and what is wrong with it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            problem(ScenarioProblem.UNREADABLE, path=str(path), reason=reason)
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        reason = str(getattr(exc, "problem", None) or type(exc).__name__)
        raise UserError(
            problem(ScenarioProblem.UNREADABLE, path=str(path), reason=reason)
        ) from None
    try:
        return Scenario.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise UserError(
            problem(ScenarioProblem.INVALID, path=str(path), errors=_errors(exc))
        ) from None


def check_names(
    scenario: Scenario,
    path: Path,
    *,
    people: set[str],
    initiatives: set[str],
    milestones: set[str],
    dependencies: set[str],
    kpis: set[str],
) -> None:
    """Every person, initiative, milestone, dependency and KPI the scenario names is in the plan."""
    named = (
        ("people", [*scenario.pulses.silent, *scenario.votes.leaders], people),
        ("initiatives", list(scenario.pulses.initiatives), initiatives),
        ("milestones", scenario.slips, milestones),
        ("dependencies", scenario.dependencies.never_acknowledged, dependencies),
        ("KPIs", list(scenario.pulses.kpi_drift), kpis),
    )
    for what, names, known in named:
        unknown = sorted(set(names) - known)
        if unknown:
            raise UserError(
                problem(ScenarioProblem.UNKNOWN, path=str(path), what=what, names=unknown)
            )
