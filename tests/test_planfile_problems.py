"""Plan-file problems are data (a code, the place, parameters); only the catalogues word them."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import BaseModel, ValidationError

import bot.planfile
import bot.planfile.problems as plan_problems
from bot.planfile.problems import MAX_LISTED_PROBLEMS, PlanProblems
from bot.planfile.problems import PlanProblemCode as Code
from bot.planfile.validate import _field_problems, validate_document
from bot.planfile.yaml_reader import read_yaml
from bot.problems import Problem
from templates.problems import say
from tests.planfile_support import base_text


def problems_of(*edits: tuple[str, str], text: str | None = None) -> list[Problem]:
    """Every problem `validate` finds in the base plan with these textual edits."""
    text = base_text() if text is None else text
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    with pytest.raises(PlanProblems) as caught:
        validate_document(*read_yaml("plan.yaml", text))
    return caught.value.plan_problems


def test_a_broken_reference_is_a_code_a_place_and_parameters():
    assert problems_of(("provider: marketing", "provider: marketting")) == [
        Problem(
            Code.UNKNOWN_REFERENCE,
            "plan.yaml, line 35",
            {
                "name": "provider",
                "value": "marketting",
                "kind": "team",
                "suggestion": "marketing",
                "item": "initiative portal-beta, dependency support-training",
            },
        )
    ]


def test_the_schemas_own_checks_give_their_code_not_a_sentence():
    assert problems_of(("due: 2027-01-15", "due: 2027-02-30")) == [
        Problem(
            Code.NOT_A_REAL_DATE,
            "plan.yaml, line 32",
            {"given": "2027-02-30", "item": "initiative portal-beta, milestone beta-ready, due"},
        )
    ]


@pytest.mark.parametrize(
    ("edit", "code", "params"),
    [
        (("title: ERP integration", "title:"), Code.EXPECTED_TEXT, {"given": None}),
        (
            ("leaders: [cfo@northwind.example, cio", "leaders: {cfo: a}\n#"),
            Code.EXPECTED_LIST,
            {"given": {"cfo": "a"}},
        ),
        (
            ("defaults: {pulse: ", "defaults: [pulse]\n# "),
            Code.EXPECTED_MAPPING,
            {"given": ["pulse"]},
        ),
        (("baseline: 12", "baseline: twelve"), Code.NOT_A_NUMBER, {"given": "twelve"}),
        (("ack_within_days: 5", "ack_within_days: 2.5"), Code.NOT_A_WHOLE_NUMBER, {"given": 2.5}),
        (("ack_within_days: 5", "ack_within_days: -1"), Code.NUMBER_TOO_SMALL, {"ge": 0}),
        (("ack_within_days: 5", "ack_within_days: 999"), Code.NUMBER_TOO_LARGE, {"le": 365}),
        (
            ("direction: down", "direction: sideways"),
            Code.NOT_ONE_OF,
            {"given": "sideways", "expected": "'up' or 'down'"},
        ),
        (("title: ERP integration", 'title: ""'), Code.EMPTY_TEXT, {}),
        (
            ("title: ERP integration", "title: " + "x" * 501),
            Code.TEXT_TOO_LONG,
            {"max_length": 500},
        ),
        (("    title: ERP integration\n", ""), Code.MISSING_FIELD, {"name": "title"}),
        (
            ("status: paused", "staus: paused"),
            Code.UNKNOWN_FIELD,
            {"name": "staus", "suggestion": "status"},
        ),
    ],
    ids=lambda value: value.value if isinstance(value, Code) else "",
)
def test_pydantic_error_types_become_codes_with_their_context(edit, code, params):
    (found,) = problems_of(edit)
    assert found.code == code
    assert params.items() <= found.params.items()


def test_a_pydantic_error_type_without_a_code_keeps_pydantics_message_as_a_parameter():
    # A boolean is a plan field now (defaults.poll_anonymous, worded as plan.not_a_flag): a
    # UUID is a type no plan field has.
    class Keyed(BaseModel):
        ref: UUID

    class Here:
        def place(self, path: Any) -> str:
            return "here"

    with pytest.raises(ValidationError) as caught:
        Keyed.model_validate({"ref": "perhaps"})
    (found,) = _field_problems(caught.value, {"ref": "perhaps"}, Here())
    assert found.code == Code.INVALID_VALUE
    assert found.params["detail"] == caught.value.errors()[0]["msg"]
    assert say(found, "cli") == f"{caught.value.errors()[0]['msg']}."


BROKEN = (
    ("timezone: America/New_York", "timezone: Mars/Olympus"),
    ('channel: "#marketing"', "channel: Marketing & Sales <team>"),
    ("owner: coo@northwind.example", "owner: the COO"),
    ("{start: 2027-01-01}", "{start: 2027-01-05, end: 2027-01-01}"),
    ("amber: 5, red: 15", "amber: 5.5, red: 2"),
    ("key: data-migration", "key: beta-ready"),
    ("milestone: beta-launch", "milestone: data-migration"),
    ("kpis: [close-days]", "kpis: [close-dayz]"),
    ('pulse: "0 9 * * mon"                #', 'pulse: "0 9 * *" #'),
)


@pytest.mark.parametrize("surface", ["cli", "slack"])
def test_every_problem_of_a_broken_plan_is_worded_on_both_surfaces(surface):
    """Real parameters (dates, floats, lists, None, user text with mrkdwn) render everywhere."""
    found = problems_of(*BROKEN)
    assert {problem.code for problem in found} >= {
        Code.NOT_A_TIMEZONE,
        Code.NOT_A_CHANNEL,
        Code.NOT_A_PERSON,
        Code.HOLIDAY_ENDS_BEFORE_START,
        Code.KPI_RED_BELOW_AMBER,
        Code.DUPLICATE_KEY,
        Code.UNKNOWN_MILESTONE,
        Code.UNKNOWN_KPI,
        Code.NOT_A_CRON,
    }
    for problem in found:
        sentence = say(problem, surface)
        assert sentence and "\n" not in sentence, problem
    if surface == "slack":
        assert "'Marketing &amp; Sales &lt;team&gt;' is not a channel" in " ".join(
            say(problem, surface) for problem in found
        )


def test_only_the_listed_problems_are_worded(monkeypatch):
    """Collecting 10,000 problems costs no sentences: only the listing words, and only 200."""
    worded: list[Problem] = []

    def counting_say(problem: Problem, surface: str) -> str:
        worded.append(problem)
        return say(problem, "cli")

    monkeypatch.setattr(plan_problems, "say", counting_say)
    twins = "teams:\n" + "  - {key: it, name: IT again}\n" * 250
    found = problems_of(("teams:\n", twins))
    assert len(found) == 250
    assert len(worded) == MAX_LISTED_PROBLEMS
    with pytest.raises(PlanProblems) as caught:
        raise PlanProblems(found)
    assert "... and 50 more; fix these first." in caught.value.message


def _sentence_arguments(tree: ast.AST) -> list[str]:
    """Text literals handed to an error or a ValueError: a sentence written in code."""
    errors = {"UserError", "NotFound", "NotAllowed", "ConfigurationError", "PlanProblems"}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id in errors or node.func.id.endswith("ValueError"):
            for argument in node.args:
                if isinstance(argument, ast.JoinedStr) or (
                    isinstance(argument, ast.Constant) and isinstance(argument.value, str)
                ):
                    found.append(f"line {node.lineno}: {ast.unparse(argument)}")
    return found


def test_no_plan_file_rule_writes_its_own_sentence():
    """Adding a rule means a code and a sentence in templates/problems/, never text in bot/."""
    for path in sorted(Path(bot.planfile.__file__).parent.glob("*.py")):
        assert _sentence_arguments(ast.parse(path.read_text(encoding="utf-8"))) == [], path
