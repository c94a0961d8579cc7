"""The details modal: the form it shows, and reading a submission (field errors keyed by block_id)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlmodel import Session, select

from bot.errors import NotAllowed, UserError
from bot.problems import problem
from bot.pulses.answers import record_answer
from bot.pulses.details import (
    details_view,
    loading_view,
    message_view,
    pulse_id_from,
    read_details,
)
from bot.pulses.rules import AnswerProblem
from handlers.errors import field_errors, say_error
from storage.db import session_scope
from storage.models import PulseAnswer
from templates.ids import PulseDetailsIds as Ids
from tests import factories
from tests.test_pulse_answer_core import make_pulse

MONDAY = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
TUESDAY = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
NEXT_MONDAY = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)


def valid_view(view: dict) -> dict:
    """Block Kit limits, checked by slack_sdk's own models (title, blocks, metadata...)."""
    View(**view).validate_json()
    assert len(view["blocks"]) <= 100
    for block in view["blocks"]:
        Block.parse(block).validate_json()
    assert len(view.get("private_metadata", "")) <= 3000
    return view


@pytest.fixture
def plan(engine):
    with session_scope(engine) as session:
        factories.plan_settings(session)
        owner = factories.person(session, slack_id="UOWNER", tz="America/New_York")
        team = factories.team(session)
        objective = factories.objective(session)
        kpi = factories.kpi(
            session, objective=objective, name="Requests via portal", unit="%", target=40
        )
        factories.reading(session, kpi=kpi, value=12, as_of=date(2026, 11, 2))
        initiative = factories.initiative(
            session, owner=owner, team=team, title="Portal <beta> & co", kpis=[kpi]
        )
        ready = factories.milestone(
            session, initiative=initiative, due=date(2027, 1, 15), title="Beta ready"
        )
        factories.milestone(session, initiative=initiative, due=date(2026, 10, 1), status="done")
        marketing = factories.team(session, name="Marketing")
        training = factories.dependency(
            session,
            initiative=initiative,
            provider=marketing,
            needed_by=date(2027, 1, 25),
            need="Support staff trained",
        )
        factories.dependency(
            session,
            initiative=initiative,
            provider=marketing,
            needed_by=date(2026, 12, 1),
            state="delivered",
        )
        pulse = make_pulse(session, initiative=initiative, due_at=MONDAY, next_due_at=NEXT_MONDAY)
        return {"pulse": pulse.id, "kpi": kpi.id, "ready": ready.id, "dependency": training.id}


def test_form_shows_kpis_with_unit_target_and_last_reading(engine, plan):
    with session_scope(engine) as session:
        view = valid_view(
            details_view(session, pulse_id=plan["pulse"], person="UOWNER", now=TUESDAY)
        )
    assert view["callback_id"] == Ids.VIEW
    assert pulse_id_from(view["private_metadata"]) == plan["pulse"]
    blocks = {block.get("block_id"): block for block in view["blocks"]}
    kpi_block = blocks[f"{Ids.KPI_BLOCK_PREFIX}{plan['kpi']}"]
    assert kpi_block["element"]["type"] == "number_input"
    assert kpi_block["label"]["text"] == "Requests via portal (%)"
    assert kpi_block["hint"]["text"] == "Target 40% by 2027-09-30. Last reading 12% on 2026-11-02."
    # Only open milestones get a date picker; the done one is not offered.
    assert f"{Ids.EXPECTED_BLOCK_PREFIX}{plan['ready']}" in blocks
    assert [o["value"] for o in blocks[Ids.DONE_BLOCK]["element"]["options"]] == [
        str(plan["ready"])
    ]
    assert {
        Ids.STATUS_BLOCK,
        Ids.CONFIDENCE_BLOCK,
        Ids.BLOCKERS_BLOCK,
        Ids.DEPENDENCY_LATE_BLOCK,
    } <= set(blocks)
    assert "Portal &lt;beta&gt; &amp; co" in view["blocks"][0]["text"]["text"]
    # One box per open dependency (the delivered one is not offered), none ticked yet.
    late = blocks[Ids.DEPENDENCY_LATE_BLOCK]["element"]
    assert [o["value"] for o in late["options"]] == [str(plan["dependency"])]
    assert late["options"][0]["text"]["text"] == "Support staff trained"
    assert late["options"][0]["description"]["text"] == "from Marketing, needed by 2027-01-25"
    assert "initial_options" not in late


def test_form_is_prefilled_with_the_current_answer(engine, plan):
    with session_scope(engine) as session:
        record_answer(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            status="at_risk",
            confidence=2,
            blockers="Vendor & <legal>",
            dependency_reports={plan["dependency"]: True},
            now=TUESDAY,
        )
    with session_scope(engine) as session:
        view = valid_view(
            details_view(session, pulse_id=plan["pulse"], person="UOWNER", now=TUESDAY)
        )
    blocks = {block.get("block_id"): block for block in view["blocks"]}
    assert blocks[Ids.STATUS_BLOCK]["element"]["initial_option"]["value"] == "at_risk"
    assert blocks[Ids.CONFIDENCE_BLOCK]["element"]["initial_option"]["value"] == "2"
    # A text box shows what was typed: no mrkdwn entities in it.
    assert blocks[Ids.BLOCKERS_BLOCK]["element"]["initial_value"] == "Vendor & <legal>"
    # The dependency reported late is at risk now: its box comes ticked.
    ticked = blocks[Ids.DEPENDENCY_LATE_BLOCK]["element"]["initial_options"]
    assert [o["value"] for o in ticked] == [str(plan["dependency"])]


def test_form_refused_to_someone_else(engine, plan):
    with pytest.raises(NotAllowed), session_scope(engine) as session:
        details_view(session, pulse_id=plan["pulse"], person="USOMEONE", now=TUESDAY)


def test_small_views_are_valid():
    valid_view(loading_view(123456789))
    refused = NotAllowed(problem(AnswerProblem.NOT_OWNER, initiative="<!channel> & co" * 200))
    view = valid_view(message_view(say_error(refused)))
    assert "<!channel>" not in str(view) and "&lt;!channel&gt; &amp; co" in str(view)


def state(
    plan,
    *,
    status="on_track",
    kpi=None,
    expected=None,
    done=(),
    confidence=None,
    blockers=None,
    late=False,
) -> dict:
    values = {
        Ids.STATUS_BLOCK: {
            Ids.STATUS: {
                "type": "radio_buttons",
                "selected_option": {"value": status} if status else None,
            }
        },
        Ids.CONFIDENCE_BLOCK: {
            Ids.CONFIDENCE: {
                "type": "static_select",
                "selected_option": {"value": confidence} if confidence else None,
            }
        },
        f"{Ids.KPI_BLOCK_PREFIX}{plan['kpi']}": {Ids.KPI: {"type": "number_input", "value": kpi}},
        Ids.DONE_BLOCK: {
            Ids.DONE: {
                "type": "multi_static_select",
                "selected_options": [{"value": str(plan[d])} for d in done],
            }
        },
        f"{Ids.EXPECTED_BLOCK_PREFIX}{plan['ready']}": {
            Ids.EXPECTED: {"type": "datepicker", "selected_date": expected}
        },
        Ids.BLOCKERS_BLOCK: {Ids.BLOCKERS: {"type": "plain_text_input", "value": blockers}},
        Ids.DEPENDENCY_LATE_BLOCK: {
            Ids.DEPENDENCY_LATE: {
                "type": "checkboxes",
                "selected_options": [{"value": str(plan["dependency"])}] if late else [],
            }
        },
    }
    return values


@pytest.mark.parametrize(
    ("fields", "block", "message"),
    [
        ({"kpi": "abc"}, "kpi", "Enter a number"),
        ({"kpi": "1e999"}, "kpi", "finite number"),
        ({"kpi": "nan"}, "kpi", "finite number"),
        ({"expected": "2026-11-23"}, "expected", "in the past"),
        ({"expected": "2027-02-30"}, "expected", "Pick a date"),
        ({"expected": "2027-02-01", "done": ["ready"]}, "expected", "not both"),
        ({"status": None}, "status", "Choose"),
        ({"confidence": "7"}, "confidence", "1 (low) to 5 (high)"),
    ],
)
def test_invalid_input_is_a_field_error(engine, plan, fields, block, message):
    block_id = {
        "kpi": f"{Ids.KPI_BLOCK_PREFIX}{plan['kpi']}",
        "expected": f"{Ids.EXPECTED_BLOCK_PREFIX}{plan['ready']}",
        "status": Ids.STATUS_BLOCK,
        "confidence": Ids.CONFIDENCE_BLOCK,
    }[block]
    with pytest.raises(UserError) as caught, session_scope(engine) as session:
        read_details(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            values=state(plan, **fields),
            now=TUESDAY,
        )
    errors = field_errors(caught.value)  # what the modal shows, each under its block
    assert list(errors) == [block_id]
    assert message in errors[block_id]
    with Session(engine) as session:
        assert session.exec(select(PulseAnswer)).all() == []


def test_every_bad_field_is_reported_at_once(engine, plan):
    with pytest.raises(UserError) as caught, session_scope(engine) as session:
        read_details(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            values=state(plan, kpi="abc", expected="2020-01-01"),
            now=TUESDAY,
        )
    assert set(field_errors(caught.value)) == {
        f"{Ids.KPI_BLOCK_PREFIX}{plan['kpi']}",
        f"{Ids.EXPECTED_BLOCK_PREFIX}{plan['ready']}",
    }


def test_valid_submission_reads_into_details(engine, plan):
    with session_scope(engine) as session:
        details = read_details(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            now=TUESDAY,
            values=state(
                plan,
                status="at_risk",
                kpi=" 17.5 ",
                expected="2027-01-29",
                confidence="4",
                blockers="  Legal review  ",
                late=True,
            ),
        )
    assert details.status == "at_risk" and details.confidence == 4
    assert details.kpi_values == {plan["kpi"]: 17.5}
    assert details.milestone_updates == {plan["ready"]: date(2027, 1, 29)}
    assert details.blockers == "Legal review" and details.dependency_late
    assert details.dependency_reports == {plan["dependency"]: True}
    with session_scope(engine) as session:
        done = read_details(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            now=TUESDAY,
            values=state(plan, done=["ready"], kpi=""),
        )
    assert done.milestone_updates == {plan["ready"]: "done"} and done.kpi_values == {}
    assert done.blockers is None and not done.dependency_late


def test_today_is_not_in_the_past(engine, plan):
    with session_scope(engine) as session:
        details = read_details(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            now=TUESDAY,
            values=state(plan, expected="2026-11-24"),
        )
    assert details.milestone_updates == {plan["ready"]: date(2026, 11, 24)}


@pytest.mark.parametrize(
    ("typed", "given", "code"),
    [
        ({"status": "great"}, lambda ids: {"status": "great"}, AnswerProblem.STATUS_CHOICE),
        ({"confidence": "9"}, lambda ids: {"confidence": 9}, AnswerProblem.CONFIDENCE_RANGE),
        (
            {"kpi": "inf"},
            lambda ids: {"kpi_values": {ids["kpi"]: float("inf")}},
            AnswerProblem.NOT_FINITE,
        ),
        (
            {"expected": "2026-11-23"},
            lambda ids: {"milestone_updates": {ids["ready"]: date(2026, 11, 23)}},
            AnswerProblem.DATE_IN_PAST,
        ),
        (
            {"blockers": "x" * 3001},
            lambda ids: {"blockers": "x" * 3001},
            AnswerProblem.BLOCKERS_TOO_LONG,
        ),
    ],
)
def test_the_modal_and_the_core_apply_the_same_rule(engine, plan, typed, given, code):
    # One rule, two callers: the problem (its code and its block) is the same either way.
    with pytest.raises(UserError) as from_modal, session_scope(engine) as session:
        read_details(
            session,
            pulse_id=plan["pulse"],
            person="UOWNER",
            values=state(plan, **typed),
            now=TUESDAY,
        )
    fields = {"status": "on_track", **given(plan)}
    with pytest.raises(UserError) as from_core, session_scope(engine) as session:
        record_answer(session, pulse_id=plan["pulse"], person="UOWNER", now=TUESDAY, **fields)
    assert [(p.code, p.field) for p in from_modal.value.problems] == [
        (p.code, p.field) for p in from_core.value.problems
    ]
    assert [p.code for p in from_core.value.problems] == [code]


def test_a_refusal_is_shown_on_the_forms_first_field(engine, plan):
    with pytest.raises(NotAllowed) as caught, session_scope(engine) as session:
        read_details(
            session, pulse_id=plan["pulse"], person="USOMEONE", values=state(plan), now=TUESDAY
        )
    errors = field_errors(caught.value)
    assert list(errors) == [Ids.STATUS_BLOCK]
    assert (
        errors[Ids.STATUS_BLOCK]
        == "Only the owner of Portal &lt;beta&gt; &amp; co can answer its pulse check."
    )


@pytest.mark.parametrize("metadata", [None, "", "{}", '{"pulse_id": "1"}', "not json"])
def test_unreadable_metadata_is_a_plain_error(metadata):
    with pytest.raises(UserError) as caught:
        pulse_id_from(metadata)
    assert "out of date" in say_error(caught.value)


def test_form_stays_within_modal_limits_for_a_huge_initiative(engine):
    with session_scope(engine) as session:
        owner = factories.person(session, slack_id="UBIG")
        objective = factories.objective(session)
        kpis = [
            factories.kpi(
                session, objective=objective, name="<&>" * 100, unit="&" * 30, target=1e12
            )
            for _ in range(60)
        ]
        initiative = factories.initiative(
            session, owner=owner, team=factories.team(session), title="&" * 500, kpis=kpis
        )
        for _ in range(60):
            factories.milestone(
                session, initiative=initiative, due=date(2027, 1, 1), title="<!channel> &" * 30
            )
        pulse = make_pulse(session, initiative=initiative, due_at=MONDAY, next_due_at=NEXT_MONDAY)
    with session_scope(engine) as session:
        view = valid_view(details_view(session, pulse_id=pulse.id, person="UBIG", now=TUESDAY))
    assert "20 more KPIs and 20 more milestones" in str(view["blocks"])
