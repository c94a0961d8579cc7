"""Every interactive payload the bot accepts, fuzzed against a live plan: no 5xx, no traceback, no partial write.

tests/test_generated_requests.py throws malformed requests at an empty database. This module
aims at the listeners themselves, with a plan in place (Alice's pulse prompt DM with two
pulses, a KPI, milestones, a dependency on Marketing, an open decision poll with three
leaders): every registered slash command with arbitrary text, a click on every registered
action_id with an arbitrary value (real row ids among them), a submission of every
registered callback_id with arbitrary state and private_metadata, and events. Each request is
signed and sent the way Slack sends it (tests/slack_harness.py), and each example starts from
the same database.

Properties: the answer is never a 5xx (nor Bolt's 404), nothing reaches the server log as an
unexpected error, nothing any person is shown carries a traceback, and a refused request (a
UserError or an unreadable payload, as handlers/errors.py logs it) leaves every row as it was.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from bot.slack.errors import SlackError
from templates.ids import (
    CantMakeItIds,
    DependencyIds,
    FollowThroughIds,
    FramingIds,
    MilestoneIds,
    PollIds,
    PulseDetailsIds,
    PulseIds,
    QueryIds,
)
from tests import factories, poll_fixtures
from tests.fuzz_support import all_rows, report_cases, restore
from tests.test_pulse_answer_slack import post_prompt

# Examples per test (events a third): about 3 s per test on a 2-core machine with SQLite.
# PLANPULSE_FUZZ_EXAMPLES runs more, for a longer hunt.
EXAMPLES = int(os.environ.get("PLANPULSE_FUZZ_EXAMPLES", "80"))

USERS = st.sampled_from(["UALICE", "UALICE", "UBOB", "UCFO", "UCIO", "UGONE", "UNOBODY"])
CHANNELS = st.sampled_from(["UALICE", "CDELIVERY", "CMARKETING", "CDECISIONS", "CRANDOM"])
OPTIONS = ["delay", "descope", "add_resources", "accept_risk"]
# Text that has tripped parsers elsewhere: digits that are not ASCII, signs, spaces, huge numbers.
TRICKY = st.sampled_from(
    [
        "",
        " ",
        "0",
        "-1",
        "+1",
        " 1 ",
        "1.0",
        "1e3",
        "²",
        "٣",
        "\uff11",  # a fullwidth one
        "9" * 10,
        "9" * 18,
        "9" * 19,
        "9" * 40,
        "1:2",
        "null",
        "<!channel>",
        "&lt;",
        "\x00",
        "a\x00b",
        "tab\tbell\x07",
        "a" * 3000,
    ]
)
JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | TRICKY
)
JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)

# Every action_id a listener is registered for (decision_vote:<option> is drawn apart), and
# one from an older version that no listener answers any more.
ACTION_IDS = [
    PulseIds.ON_TRACK,
    PulseIds.AT_RISK,
    PulseIds.OFF_TRACK,
    PulseIds.ADD_DETAILS,
    DependencyIds.ACKNOWLEDGE,
    DependencyIds.CANT_MAKE_IT,
    DependencyIds.DELIVERED,
    MilestoneIds.MARK_DONE,
    MilestoneIds.NEW_DATE,
    MilestoneIds.DESCOPE,
    MilestoneIds.OPEN_DECISION,
    FramingIds.FRAME,
    FollowThroughIds.STILL_ON_TRACK,
    FollowThroughIds.MOVES_US,
    FollowThroughIds.SHIFT_LATER,
    QueryIds.SHARE,
    "retired_button",
]
CALLBACK_IDS = [
    PulseDetailsIds.VIEW,
    CantMakeItIds.VIEW,
    MilestoneIds.NEW_DATE_VIEW,
    MilestoneIds.DESCOPE_VIEW,
    FramingIds.VIEW,
    FollowThroughIds.MOVES_US_VIEW,
]
# Every block and action ID a modal may carry, so that generated state lands where it is read.
FORM_IDS = sorted(
    {
        str(member)
        for ids in (PulseDetailsIds, CantMakeItIds, MilestoneIds, FramingIds, FollowThroughIds)
        for member in ids
    }
)


@pytest.fixture
def plan(services, standin) -> dict[str, Any]:
    """Alice's prompt DM (test_pulse_answer_slack's), plus an open poll with three leaders."""
    ids = post_prompt(services, standin)
    with Session(services.engine) as session:
        factories.plan_settings(session, decisions_channel="CDECISIONS")
        leaders = {
            slack_id: factories.person(session, slack_id=slack_id, is_leader=True)
            for slack_id in ("UCFO", "UCIO", "UCOO")
        }
        session.commit()
        poll_plan = poll_fixtures.PollPlan(
            milestone_id=ids["launch"],
            initiative_id=0,
            leaders={s: int(p.id or 0) for s, p in leaders.items()},
            owner_id=0,
        )
    ids["poll"] = poll_fixtures.open_poll(
        services, poll_plan, opened_at=datetime.now(UTC) - timedelta(hours=1)
    )
    standin.reset_calls()
    return ids


def _ids(plan: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Ids as a listener reads them: the plan's own rows, others, and numbers that are no id."""
    real = [plan[k] for k in ("portal", "crm", "kpi", "ready", "launch", "dependency", "poll")]
    return st.sampled_from(real) | st.integers(-5, 50) | st.sampled_from([2**31, 2**63, 10**30])


def _values(plan: dict[str, Any]) -> st.SearchStrategy[str]:
    """A button's value: a row id as text, a tricky string, or any text at all."""
    return _ids(plan).map(str) | TRICKY | st.text(max_size=12)


def _clicks(plan: dict[str, Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    votes = st.tuples(
        st.sampled_from([plan["poll"], 0, 2**40]) | st.text(max_size=4),
        st.sampled_from(OPTIONS) | st.text(max_size=6),
        st.booleans(),
    ).map(
        lambda v: (
            f"{PollIds.VOTE}:{v[1]}",
            f"{plan['poll'] if v[2] else v[0]}:{v[1]}",
            f"{PollIds.VOTE_BLOCK}:{v[0]}",
        )
    )
    plain = st.tuples(
        st.sampled_from(ACTION_IDS), _values(plan), st.sampled_from(["b", "pulse_actions:1"])
    )
    pressed = st.integers(0, 3).flatmap(lambda n: votes if n == 0 else plain)  # a quarter votes
    return st.tuples(pressed, USERS, CHANNELS | st.none(), st.booleans(), st.booleans())


def _click_payload(
    bot: Any,
    ids: tuple[str, str, str],
    user: str,
    channel: str | None,
    from_home: bool,
    no_value: bool,
) -> dict[str, Any]:
    """A press in a message (the channel's last post) or on App Home (no channel)."""
    action_id, value, block_id = ids
    on_home = from_home or channel is None
    return bot.block_action_payload(
        action_id,
        None if no_value else value,
        user_id=user,
        channel_id=None if on_home else channel,
        block_id=block_id,
        view={"id": "VHOME", "type": "home", "callback_id": QueryIds.HOME_VIEW}
        if on_home
        else None,
    )


def _element() -> st.SearchStrategy[Any]:
    """One input's state, as any Block Kit element reports it, or something no element sends."""
    text = TRICKY | st.text(max_size=20)
    dates = st.dates().map(str) | TRICKY | st.text(max_size=10)
    option = st.fixed_dictionaries({"value": text | JUNK})
    return st.one_of(
        st.fixed_dictionaries({"type": st.just("plain_text_input"), "value": text | st.none()}),
        st.fixed_dictionaries({"type": st.just("datepicker"), "selected_date": dates | st.none()}),
        st.fixed_dictionaries(
            {"type": st.just("static_select"), "selected_option": option | st.none()}
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("checkboxes"),
                "selected_options": st.lists(option, max_size=3) | JUNK,
            }
        ),
        JUNK,
    )


def _state(plan: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    block_ids = st.sampled_from(FORM_IDS) | st.tuples(
        st.sampled_from([PulseDetailsIds.KPI_BLOCK_PREFIX, PulseDetailsIds.EXPECTED_BLOCK_PREFIX]),
        _ids(plan).map(str) | TRICKY,
    ).map("".join)
    block = st.dictionaries(st.sampled_from(FORM_IDS), _element(), max_size=3) | JUNK
    return st.dictionaries(block_ids, block, max_size=6)


def _metadata(plan: dict[str, Any]) -> st.SearchStrategy[str]:
    keys = ["pulse_id", "dependency_ids", "milestone_id", "due", "url", "framing_id"]
    keys += ["anonymous", "dependency_id", "knock_on_id"]
    fields = st.dictionaries(st.sampled_from(keys), _ids(plan) | JUNK, max_size=5)
    return fields.map(json.dumps) | TRICKY | st.text(max_size=20)


def _submissions(plan: dict[str, Any]) -> st.SearchStrategy[tuple[str, Any, str, str]]:
    """Any state and metadata half the time; otherwise a form as the bot drew it, filled in anyhow."""
    anything = st.tuples(st.sampled_from(CALLBACK_IDS), _state(plan), _metadata(plan), USERS)
    return anything | _filled_forms(plan)


def _input(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    text = st.text(max_size=30) | TRICKY
    if kind == "date":
        picked = st.dates(date(2025, 1, 1), date(2028, 12, 31)).map(str) | TRICKY
        return st.fixed_dictionaries({"type": st.just("datepicker"), "selected_date": picked})
    if kind == "select":
        options = st.sampled_from(["on_track", "at_risk", "off_track", "1", "5", "10"]) | text
        return st.fixed_dictionaries(
            {"type": st.just("static_select"), "selected_option": st.builds(dict, value=options)}
        )
    if kind == "ticks":
        ticked = st.lists(st.builds(dict, value=st.integers(0, 12).map(str) | text), max_size=3)
        return st.fixed_dictionaries({"type": st.just("checkboxes"), "selected_options": ticked})
    return st.fixed_dictionaries({"type": st.just("plain_text_input"), "value": text})


def _form(fields: dict[str, tuple[str, str]]) -> st.SearchStrategy[dict[str, Any]]:
    """`view.state.values` with any of `fields` (block_id: (action_id, kind)) filled in."""
    return st.fixed_dictionaries(
        {},
        optional={
            block: st.fixed_dictionaries({action: _input(kind)})
            for block, (action, kind) in fields.items()
        },
    )


def _filled_forms(plan: dict[str, Any]) -> st.SearchStrategy[tuple[str, Any, str, str]]:
    d, m, f = PulseDetailsIds, MilestoneIds, FramingIds
    milestone = {"milestone_id": plan["ready"], "due": "2027-01-15", "url": None}
    forms = {
        d.VIEW: (
            {"pulse_id": plan["portal"], "dependency_ids": [plan["dependency"]]},
            {
                d.STATUS_BLOCK: (d.STATUS, "select"),
                d.CONFIDENCE_BLOCK: (d.CONFIDENCE, "select"),
                f"{d.KPI_BLOCK_PREFIX}{plan['kpi']}": (d.KPI, "text"),
                d.DONE_BLOCK: (d.DONE, "ticks"),
                f"{d.EXPECTED_BLOCK_PREFIX}{plan['launch']}": (d.EXPECTED, "date"),
                d.BLOCKERS_BLOCK: (d.BLOCKERS, "text"),
                d.DEPENDENCY_LATE_BLOCK: (d.DEPENDENCY_LATE, "ticks"),
            },
        ),
        CantMakeItIds.VIEW: (
            {"dependency_id": plan["dependency"]},
            {
                CantMakeItIds.REASON_BLOCK: (CantMakeItIds.REASON, "text"),
                CantMakeItIds.DATE_BLOCK: (CantMakeItIds.DATE, "date"),
            },
        ),
        m.NEW_DATE_VIEW: (milestone, {m.NEW_DATE_BLOCK: (m.NEW_DATE_INPUT, "date")}),
        m.DESCOPE_VIEW: (milestone, {m.SCOPE_CUT_BLOCK: (m.SCOPE_CUT_INPUT, "text")}),
        f.VIEW: (
            {"milestone_id": plan["launch"], "framing_id": None, "anonymous": False, "url": None},
            {
                f.DATE_BLOCK: (f.DATE, "date"),
                f.SCOPE_BLOCK: (f.SCOPE, "text"),
                f.RESOURCES_BLOCK: (f.RESOURCES, "text"),
            },
        ),
    }
    # The owner (Alice) or the leaders mostly: people the forms are for.
    people = st.sampled_from(["UALICE", "UALICE", "UALICE", "UCFO", "UBOB"])
    return st.one_of(
        st.tuples(st.just(callback), _form(fields), st.just(json.dumps(metadata)), people)
        for callback, (metadata, fields) in forms.items()
    )


def _commands() -> st.SearchStrategy[tuple[str, str, str, str]]:
    words = st.sampled_from(
        [
            *("mine", "deps", "alerts", "decisions", "digest", "help", "chart", "anonymous"),
            *("away", "back", "portal", "beta-launch", "2027-01-01", "2026-02-30", "today"),
        ]
    )
    texts = st.lists(words | TRICKY | st.text(max_size=10), max_size=4).map(" ".join)
    return st.tuples(
        st.sampled_from(["/kpi", "/plan", "/decide", "/pulse"]), texts, USERS, CHANNELS
    )


def _events() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"type": st.sampled_from(["app_home_opened", "app_home_opened", "app_mention"])},
        optional={
            "user": USERS | JUNK,
            "channel": CHANNELS | JUNK,
            "tab": st.sampled_from(["home", "messages"]) | JUNK,
            "view": JUNK,
        },
    )


# --- the properties ---------------------------------------------------------------------------

TRACEBACK_MARKS = ("Traceback", 'File "', "Error:", "sqlalchemy", "psycopg", "Exception")


def _slack_refused(record: logging.LogRecord) -> bool:
    """The stand-in refusing a generated user or trigger: logged on purpose (see
    test_generated_requests.py); any other traceback is the bot failing on its input."""
    return bool(record.exc_info) and isinstance(record.exc_info[1], SlackError)


def _refused(records: list[logging.LogRecord]) -> bool:
    """handlers/errors.py logs every refusal it words for the person: a UserError or bad payload."""
    return any(
        r.name == "handlers.errors" and r.msg.startswith(("user error on", "malformed"))
        for r in records
    )


class Checker:
    """Sends one request, then checks the four properties; counts what happened."""

    def __init__(self, bot, standin, engine, caplog, start) -> None:
        self.bot, self.standin, self.engine, self.caplog = bot, standin, engine, caplog
        self.start = start
        self.ran: Counter[str] = Counter()

    def __call__(self, kind: str, send: Any) -> None:
        restore(self.engine, self.start)
        calls_before = len(self.standin.calls())
        logged_before = len(self.caplog.records)
        response = send()
        self.bot.wait_idle()
        records = self.caplog.records[logged_before:]
        assert response.status_code < 500, (kind, response.status_code, response.text)
        assert response.status_code != 404, (kind, response.text)  # Bolt: "unhandled request"
        failures = [
            f"{r.name}: {r.getMessage()}"
            for r in records
            if (r.exc_info or r.levelno >= logging.ERROR) and not _slack_refused(r)
        ]
        assert failures == [], kind
        shown = [response.text] + [
            json.dumps(call.params, ensure_ascii=False)
            for call in self.standin.calls()[calls_before:]
        ]
        for text in shown:
            assert not any(mark in text for mark in TRACEBACK_MARKS), (kind, text[:2000])
        refused = _refused(records) or '"response_action":"errors"' in response.text.replace(
            " ", ""
        )
        if refused:
            assert all_rows(self.engine) == self.start, (kind, "a refused request wrote rows")
        outcome = "refused" if refused else "answered"
        self.ran[f"{kind} -> {response.status_code} {outcome}"] += 1


@pytest.fixture
def check(bot, standin, engine, plan, caplog, record_property, capsys):
    caplog.set_level(logging.INFO)
    checker = Checker(bot, standin, engine, caplog, all_rows(engine))
    yield checker
    total = report_cases(
        checker.ran,
        title="fuzzed interactions against a live plan",
        record_property=record_property,
        capsys=capsys,
    )
    assert total >= EXAMPLES // 6  # Hypothesis ran them, not skipped them


# The `check` fixture is set up once per test, not per example: each example restores the
# database itself, so sharing the bot and stand-in across examples is what we want.
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


def test_slash_commands_with_any_text(check, bot) -> None:
    @FUZZ
    @given(command=_commands())
    def run(command: tuple[str, str, str, str]) -> None:
        name, text, user, channel = command
        check(f"{name}", lambda: bot.command(name, text, user_id=user, channel_id=channel))

    run()


def test_clicks_on_every_action_with_any_value(check, bot, plan) -> None:
    @FUZZ
    @given(click=_clicks(plan))
    def run(click: tuple[Any, ...]) -> None:
        payload = _click_payload(bot, *click)
        action_id = payload["actions"][0]["action_id"].partition(":")[0]
        check(f"click {action_id}", lambda: bot.action(payload))

    run()


def test_submissions_of_every_view_with_any_state(check, bot, plan) -> None:
    @FUZZ
    @given(submission=_submissions(plan))
    def run(submission: tuple[str, Any, str, str]) -> None:
        callback_id, values, metadata, user = submission
        payload = bot.view_submission_payload(
            callback_id, values, private_metadata=metadata, user_id=user
        )
        check(f"submit {callback_id}", lambda: bot.view_submission(payload))

    run()


def test_events_with_any_fields(check, bot) -> None:
    @settings(FUZZ, max_examples=EXAMPLES // 3)
    @given(event=_events())
    def run(event: dict[str, Any]) -> None:
        check(f"event {event['type']}", lambda: bot.event(event))

    run()
