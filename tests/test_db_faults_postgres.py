"""PostgreSQL going away under the running bot: it reconnects, loses no answer, and never pretends.

The server on 127.0.0.1:5432 is shared with other test runs, so it is never restarted here: what a
restart does to the bot (every connection it holds dies, idle or mid-statement) is done with
`pg_terminate_backend`, on this test's own connections only. The bot's engine names itself with a
per-test `application_name`, and only backends with that name (or the pid of the connection
running the statement) are terminated. Skipped unless PLANPULSE_TEST_DATABASE_URL is PostgreSQL.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.db import make_engine
from storage.models import PulseAnswer, PulseRequest, Vote
from templates.ids import PulseDetailsIds, PulseIds
from tests.db_fault_support import (
    STATUSES,
    STORED,
    answers_of,
    apologies,
    owners_with_prompts,
    status_click,
)
from tests.poll_support import click_vote, open_poll, vote_payload, voting_plan

NOT_SAVED_ANSWER = (
    "Sorry, your pulse answer was not saved because my database is not answering; "
    "please try again in a minute."
)
SAVED_NOT_SHOWN = (
    "Your pulse answer is saved, but I could not update the message because my database"
    " stopped answering."
)
NOT_SAVED_VOTE = (
    "Sorry, your vote was not saved because my database is not answering; "
    "please try again in a minute."
)


@pytest.fixture(autouse=True)
def _on_postgresql(postgres_base_url: str) -> None:
    """Skips (with the reason) unless the suite runs on PostgreSQL."""


@pytest.fixture
def application_name() -> str:
    return f"planpulse-dbfaults-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def database_url(database_url: str, application_name: str) -> str:
    """This test's schema, its connections named so that only they are ever terminated."""
    return f"{database_url}&application_name={application_name}"


@pytest.fixture
def admin(postgres_base_url: str) -> Iterator[Engine]:
    """A connection of our own to terminate the bot's with (it is never one of theirs)."""
    engine = make_engine(postgres_base_url)
    yield engine
    engine.dispose()


def terminate_bot_connections(admin: Engine, application_name: str) -> int:
    """What a restart does to the bot's connections: every one of them dies. Returns how many."""
    with admin.begin() as connection:
        killed = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 2000)) FROM"
                " pg_stat_activity WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": application_name},
        ).scalar_one()
    return int(killed)


def kill_mid_statement(
    engine: Engine, admin: Engine, starts_with: str, times: int
) -> Callable[[], int]:
    """The next `times` statements starting with `starts_with` find their backend terminated
    just before they run (a restart mid-request); returns a function counting the kills so far."""
    kills = 0
    lock = threading.Lock()

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        nonlocal kills
        if not statement.lstrip().upper().startswith(starts_with):
            return
        with lock:
            if kills >= times:
                return
            kills += 1
        pid = conn.connection.dbapi_connection.info.backend_pid
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid, 2000)"), {"pid": pid})

    event.listen(engine, "before_cursor_execute", before)
    return lambda: kills


def kill_at_commit(engine: Engine, admin: Engine, times: int) -> Callable[[], int]:
    """The next `times` COMMITs find their backend terminated: the reply to a COMMIT is lost."""
    kills = 0

    def before_commit(conn: Any) -> None:
        nonlocal kills
        if kills >= times:
            return
        kills += 1
        pid = conn.connection.dbapi_connection.info.backend_pid
        with admin.begin() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid, 2000)"), {"pid": pid})

    event.listen(engine, "commit", before_commit)
    return lambda: kills


def kill_once_saved(engine: Engine, admin: Engine, saved_by: str) -> dict[str, Any]:
    """Once a transaction that ran `saved_by` has committed, every later query finds its backend
    terminated (the database goes away between saving a change and showing it), until
    `state["saved"]` is set back to False; `state["kills"]` counts them."""
    state: dict[str, Any] = {"writing": False, "saved": False, "kills": 0}

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(saved_by):
            state["writing"] = True
        elif state["saved"]:
            state["kills"] += 1
            pid = conn.connection.dbapi_connection.info.backend_pid
            with admin.begin() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid, 2000)"), {"pid": pid})

    def after_commit(_conn: Any) -> None:
        if state["writing"]:
            state["saved"] = True

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", after_commit)
    return state


@pytest.fixture
def owners(services, standin) -> dict[str, int]:
    return owners_with_prompts(services, standin, 3)


def _answered(bot, user: str, pulse_id: int, expected: list[str]) -> None:
    """The answer is stored and the owner's DM was redrawn to show it."""
    with Session(bot.services.engine) as session:
        pulse = session.get(PulseRequest, pulse_id)
        assert pulse is not None
        ts = pulse.message_ts
    bot.standin.wait_for("chat.update", where=lambda c: c.params.get("ts") == ts)
    bot.wait_idle()
    assert answers_of(bot.services, pulse_id) == expected


def test_connections_killed_while_idle_are_replaced_without_anyone_noticing(
    bot, owners, admin, application_name
):
    [(first, first_pulse), (second, second_pulse), _] = owners.items()
    assert status_click(bot, PulseIds.AT_RISK, first_pulse, user_id=first).status_code == 200
    _answered(bot, first, first_pulse, ["at_risk"])

    assert terminate_bot_connections(admin, application_name) >= 1  # the pool's idle ones

    assert status_click(bot, PulseIds.OFF_TRACK, second_pulse, user_id=second).status_code == 200
    _answered(bot, second, second_pulse, ["off_track"])
    assert bot.get("/healthz").status_code == 200
    assert apologies(bot.standin) == []


@pytest.mark.parametrize("where", ["statement", "commit"])
def test_a_connection_killed_mid_answer_is_retried_and_the_answer_saved_once(
    bot, owners, admin, where
):
    engine = bot.services.engine
    kills = (
        kill_mid_statement(engine, admin, "INSERT INTO PULSE_ANSWER", times=1)
        if where == "statement"
        else kill_at_commit(engine, admin, times=1)
    )
    [(owner, pulse_id), *_] = owners.items()
    assert status_click(bot, PulseIds.AT_RISK, pulse_id, user_id=owner).status_code == 200
    _answered(bot, owner, pulse_id, ["at_risk"])
    assert kills() == 1
    assert apologies(bot.standin) == []


def test_an_answer_the_database_never_takes_is_told_as_not_saved(bot, owners, admin):
    kills = kill_mid_statement(bot.services.engine, admin, "INSERT INTO PULSE_ANSWER", times=99)
    [(owner, pulse_id), *_] = owners.items()
    assert status_click(bot, PulseIds.ON_TRACK, pulse_id, user_id=owner).status_code == 200
    bot.standin.wait_for("response_url", where=lambda c: c.params.get("user") == owner)
    bot.wait_idle()
    assert kills() == 3  # the first try and two more, each on a fresh connection
    assert apologies(bot.standin) == [(owner, NOT_SAVED_ANSWER)]
    assert answers_of(bot.services, pulse_id) == []
    assert bot.standin.calls("chat.update") == []  # the DM still offers the buttons


def test_a_modal_answer_the_database_never_takes_says_so_in_the_modal(bot, owners, admin):
    kill_mid_statement(bot.services.engine, admin, "INSERT INTO PULSE_ANSWER", times=99)
    [(owner, pulse_id), *_] = owners.items()
    values = {
        PulseDetailsIds.STATUS_BLOCK: {
            PulseDetailsIds.STATUS: {
                "type": "radio_buttons",
                "selected_option": {"value": "at_risk"},
            }
        },
        PulseDetailsIds.CONFIDENCE_BLOCK: {
            PulseDetailsIds.CONFIDENCE: {
                "type": "static_select",
                "selected_option": {"value": "3"},
            }
        },
    }
    payload = bot.view_submission_payload(
        PulseDetailsIds.VIEW,
        values,
        user_id=owner,
        private_metadata=json.dumps({"pulse_id": pulse_id}),
        blocks=[{"type": "input", "block_id": PulseDetailsIds.STATUS_BLOCK}],
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200
    # The modal stays open, the person's input in it, with the sentence under a field.
    assert response.json()["response_action"] == "errors"
    assert list(response.json()["errors"].values()) == [NOT_SAVED_ANSWER]
    bot.wait_idle()
    assert answers_of(bot.services, pulse_id) == []


def test_an_answer_saved_just_before_the_database_went_away_is_told_as_saved(bot, owners, admin):
    killing = kill_once_saved(bot.services.engine, admin, "INSERT INTO PULSE_ANSWER")
    [(owner, pulse_id), *_] = owners.items()
    assert status_click(bot, PulseIds.OFF_TRACK, pulse_id, user_id=owner).status_code == 200
    bot.standin.wait_for("response_url", where=lambda c: c.params.get("user") == owner)
    bot.wait_idle()
    killing["saved"] = False  # the database is back
    assert killing["kills"] >= 1
    told = [c.params["text"] for c in bot.standin.calls("response_url")]
    assert told == [SAVED_NOT_SHOWN]  # not "something went wrong", and not "not saved"
    assert answers_of(bot.services, pulse_id) == ["off_track"]


@pytest.fixture
def poll_id(services):
    with Session(services.engine, expire_on_commit=False) as session:
        plan = voting_plan(session)
    return open_poll(services, plan["launch"])


def _votes(services, poll_id: int) -> dict[int, str | None]:
    with Session(services.engine) as session:
        return {
            v.voter_id: v.option for v in session.exec(select(Vote).where(Vote.poll_id == poll_id))
        }


def test_a_vote_survives_a_restart_and_a_connection_killed_mid_vote(
    bot, poll_id, admin, application_name
):
    assert terminate_bot_connections(admin, application_name) >= 1
    click_vote(bot, poll_id, "delay", user="UCIO")
    kills = kill_mid_statement(bot.services.engine, admin, "INSERT INTO VOTE", times=1)
    click_vote(bot, poll_id, "descope", user="UCFO")
    assert kills() == 1
    assert sorted(o for o in _votes(bot.services, poll_id).values() if o) == ["delay", "descope"]
    told = [c.params["text"] for c in bot.standin.calls("response_url")]
    assert told == ["Your vote: Delay to 27 Feb", "Your vote: Cut scope"]
    assert apologies(bot.standin) == []


def test_a_vote_the_database_never_takes_is_told_as_not_saved(bot, poll_id, admin):
    kill_mid_statement(bot.services.engine, admin, "INSERT INTO VOTE", times=99)
    response = bot.action(vote_payload(bot, poll_id, "delay", user="UCIO"))
    assert response.status_code == 200
    bot.standin.wait_for("response_url")
    bot.wait_idle()
    assert apologies(bot.standin) == [("UCIO", NOT_SAVED_VOTE)]
    assert _votes(bot.services, poll_id) == {}


def test_answers_during_repeated_restarts_are_saved_or_told_never_lost(
    bot, services, standin, admin, application_name
):
    """Sixteen owners each answer twice (two different statuses) while every connection of the
    bot is killed every few milliseconds: each click's answer is stored once, or its owner is
    told it was not saved; nobody is told "something went wrong"."""
    owners = owners_with_prompts(services, standin, 16, prefix="UBURST")
    stop = threading.Event()
    restarts = 0

    def restart_repeatedly() -> None:
        nonlocal restarts
        while not stop.is_set():
            terminate_bot_connections(admin, application_name)
            restarts += 1
            time.sleep(random.uniform(0.005, 0.02))

    chosen = {owner: random.sample(STATUSES, 2) for owner in owners}

    def answer_twice(owner: str) -> None:
        for status in chosen[owner]:
            assert status_click(bot, status, owners[owner], user_id=owner).status_code == 200

    killer = threading.Thread(target=restart_repeatedly)
    started = time.monotonic()
    killer.start()
    try:
        clickers = [threading.Thread(target=answer_twice, args=(owner,)) for owner in owners]
        for clicker in clickers:
            clicker.start()
        for clicker in clickers:
            clicker.join(15)
        bot.wait_idle(30)
    finally:
        stop.set()
        killer.join(10)
    told = [(str(c.params["user"]), str(c.params["text"])) for c in standin.calls("response_url")]
    # Never "something went wrong": either not saved, or saved but the DM not redrawn.
    assert {said for _, said in told} <= {NOT_SAVED_ANSWER, SAVED_NOT_SHOWN}, told
    not_saved = Counter(owner for owner, said in told if said == NOT_SAVED_ANSWER)
    for owner, pulse_id in owners.items():
        stored = answers_of(services, pulse_id)
        # Two different statuses: each saved click is a row of its own, in whatever order.
        assert len(stored) == 2 - not_saved[owner], (owner, stored, told)
        assert set(stored) <= {STORED[status] for status in chosen[owner]}
    with Session(services.engine) as session:
        total = len(session.exec(select(PulseAnswer)).all())
    assert total == 2 * len(owners) - sum(not_saved.values())
    assert restarts >= 3 and time.monotonic() - started < 30
    print(
        f"{restarts} restarts during {2 * len(owners)} clicks: {total} answers saved,"
        f" {sum(not_saved.values())} told not saved,"
        f" {len(told) - sum(not_saved.values())} saved but not redrawn"
    )
