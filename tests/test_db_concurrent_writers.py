"""Concurrent writers on one database: the server answering clicks while two `planpulse tick`s fan out.

Written for SQLite, where every writer takes the one write lock of the file in turn: WAL, the
busy timeout (storage/db.py) and short transactions (no Slack call inside a write on a click's
path) must keep `database is locked` from ever reaching a person. On PostgreSQL
(PLANPULSE_TEST_DATABASE_URL) the same test checks the same outcome under row locks.

The server is the real ASGI app under uvicorn (tests/slack_harness.py), the ticks are real
processes on the same file. Checked by hand: with the busy timeout set to 0 this test fails
(leaders are told their vote was not saved), so it does see a locked database.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from standin import User
from storage.models import AuditEntry, Milestone, Person, PulseRequest, PulseState, Vote
from storage.people import person_by_slack_id
from tests import factories
from tests.db_fault_support import (
    STATUSES,
    STORED,
    answers_of,
    apologies,
    owners_with_prompts,
    status_click,
)
from tests.poll_support import open_poll, vote_payload, voting_plan

FAN_OUT_OWNERS = 40
# Seven people clicking: each click finds one of the harness's eight listener threads free, so
# its ack is never queued behind another's work (that is load, issue 12 section 6, not locking).
ANSWERING_OWNERS = 3
EXTRA_LEADERS = 1
OPTIONS = ("delay", "descope", "add_resources", "accept_risk")
ROUNDS = 3  # at least this many clicks each, and more until both ticks have finished
DEADLINE = 120.0
A_WEEK_OF_GRACE = (
    7 * 24 * 60
)  # every owner's current period is due (tests/test_pulse_delivery_concurrency.py)


def _fan_out_plan(services, standin) -> list[str]:
    """Owners with two initiatives each and no pulse yet: each tick races to prompt them all."""
    owners = []
    with Session(services.engine) as session:
        team = factories.team(session)
        for n in range(FAN_OUT_OWNERS):
            slack_id = f"UFAN{n:03d}"
            standin.workspace.add_user(User(id=slack_id, name=f"fan{n}", tz="America/New_York"))
            owner = factories.person(session, slack_id=slack_id, tz="America/New_York")
            for _ in range(2):
                factories.initiative(session, owner=owner, team=team)
            owners.append(slack_id)
        session.commit()
    return owners


def _leaders(services, standin) -> list[str]:
    with Session(services.engine) as session:
        voting_plan(session)
        for n in range(EXTRA_LEADERS):
            slack_id = f"ULEAD{n:03d}"
            standin.workspace.add_user(User(id=slack_id, name=f"leader{n}", tz="Europe/London"))
            factories.person(session, slack_id=slack_id, is_leader=True, tz="Europe/London")
        # A leader who never votes: a poll every leader voted in closes at the next tick.
        standin.workspace.add_user(User(id="UQUIET", name="quiet", tz="Europe/London"))
        factories.person(session, slack_id="UQUIET", is_leader=True, tz="Europe/London")
        session.commit()
    return ["UCIO", "UCFO", "UCOO", *(f"ULEAD{n:03d}" for n in range(EXTRA_LEADERS))]


def _start_ticks(settings, standin, cwd) -> list[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "SLACK_BOT_TOKEN": standin.workspace.bot_token,
        "SLACK_API_URL": standin.api_url,
        "PULSE_GRACE_MINUTES": str(A_WEEK_OF_GRACE),
    }
    env.pop("SLACK_APP_TOKEN", None)
    cli = [sys.executable, "-m", "bot.entry.cli", "tick"]
    return [
        subprocess.Popen(cli, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]


class WriteWatch:
    """Which of the server's threads hold an open write transaction, and any Slack call made by
    one of them: on a click's path, Slack is called only once the write has committed."""

    def __init__(self, services: Any, monkeypatch: Any) -> None:
        self.writing: set[int] = set()
        self.slack_inside_a_write: list[str] = []
        self.slack_calls = 0
        engine, gateway = services.engine, services.slack
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._ended)
        event.listen(engine, "rollback", self._ended)
        for name in ("_call", "respond"):
            monkeypatch.setattr(gateway, name, self._watched(name, getattr(gateway, name)))

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            self.writing.add(threading.get_ident())

    def _ended(self, _conn: Any) -> None:
        self.writing.discard(threading.get_ident())

    def _watched(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.slack_calls += 1
            if threading.get_ident() in self.writing:
                self.slack_inside_a_write.append(str(args[0]) if args else name)
            return method(*args, **kwargs)

        return call


def _wait_until(done: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout}s: {what}")
        time.sleep(0.02)


class Clicks:
    """Clicks made by several people at once, each waiting for the previous one to be stored."""

    def __init__(self, ticks_running: Callable[[], bool]) -> None:
        self.ticks_running = ticks_running
        self.made: dict[str, list[str]] = {}
        self.during_ticks = 0
        self.statuses: list[int] = []
        self.errors: list[BaseException] = []
        self._lock = threading.Lock()

    def run(self, person: str, click: Callable[[str], Any], choices: tuple[str, ...]) -> None:
        made: list[str] = []
        self.made[person] = made
        started = time.monotonic()
        try:
            n = 0
            while n < ROUNDS or self.ticks_running():
                if time.monotonic() - started > DEADLINE:
                    raise AssertionError(f"{person} still clicking after {DEADLINE}s")
                choice = choices[n % len(choices)]  # never the same twice in a row
                during = self.ticks_running()
                status = click(choice)
                made.append(choice)
                with self._lock:
                    self.statuses.append(status)
                    self.during_ticks += during
                n += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self.errors.append(exc)


def test_clicks_beside_two_ticks_never_meet_a_locked_database(
    bot, services, settings, standin, tmp_path, caplog, monkeypatch
):
    caplog.set_level(logging.WARNING)
    answering = owners_with_prompts(services, standin, ANSWERING_OWNERS)
    fan_out = _fan_out_plan(services, standin)
    leaders = _leaders(services, standin)
    poll_id = open_poll(services, _launch(services))
    engine = services.engine
    with Session(engine) as session:
        voter_ids = {
            slack_id: person.id
            for slack_id in leaders
            if (person := person_by_slack_id(session=session, slack_id=slack_id)) is not None
        }
    standin.reset_calls()
    watch = WriteWatch(services, monkeypatch)

    def answer(owner: str) -> Callable[[str], int]:
        def click(status: str) -> int:
            before = len(answers_of(services, answering[owner]))
            response = status_click(bot, status, answering[owner], user_id=owner)
            _wait_until(
                lambda: len(answers_of(services, answering[owner])) > before, f"{owner}'s answer"
            )
            return response.status_code

        return click

    def vote(leader: str) -> Callable[[str], int]:
        def click(option: str) -> int:
            response = bot.action(vote_payload(bot, poll_id, option, user=leader))
            _wait_until(lambda: _vote(engine, poll_id, voter_ids[leader]) == option, "a vote")
            return response.status_code

        return click

    ticks = _start_ticks(settings, standin, tmp_path)
    clicks = Clicks(lambda: any(tick.poll() is None for tick in ticks))
    threads = [
        threading.Thread(target=clicks.run, args=(o, answer(o), STATUSES)) for o in answering
    ] + [threading.Thread(target=clicks.run, args=(v, vote(v), OPTIONS)) for v in leaders]
    for thread in threads:
        thread.start()
    outcomes = [tick.communicate(timeout=DEADLINE) for tick in ticks]
    for thread in threads:
        thread.join(DEADLINE)
    bot.wait_idle(30)

    # Nobody saw an error: every request acknowledged, no apology, nothing locked in any log.
    assert apologies(standin) == []
    assert clicks.errors == [], [str(e) for e in clicks.errors]
    assert set(clicks.statuses) == {200}
    logged = [r.getMessage() for r in caplog.records]
    assert not [m for m in logged if "locked" in m], logged
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    for tick, (_, stderr) in zip(ticks, outcomes, strict=True):
        assert tick.returncode == 0, stderr.decode()
        assert b"locked" not in stderr, stderr.decode()
    # Short transactions: no Slack call (seen from the server) was made inside a write.
    assert watch.slack_calls > 0 and watch.slack_inside_a_write == []
    # They really wrote at the same time.
    assert clicks.during_ticks >= len(threads), clicks.during_ticks

    # No row lost: every answer in the order given, every vote's last choice, each in the audit.
    for owner, pulse_id in answering.items():
        assert answers_of(services, pulse_id) == [STORED[s] for s in clicks.made[owner]]
    for leader in leaders:
        assert _vote(engine, poll_id, voter_ids[leader]) == clicks.made[leader][-1]
    with Session(engine) as session:
        audited = session.exec(select(AuditEntry).where(AuditEntry.entity == "decision_poll")).all()
    assert len(audited) == sum(len(clicks.made[leader]) for leader in leaders)
    # The fan-out: every initiative prompted once, every owner one DM, beside all those clicks.
    _assert_fanned_out_once(engine, standin, fan_out, list(answering))
    print(
        f"{sum(len(m) for m in clicks.made.values())} clicks"
        f" ({clicks.during_ticks} while the ticks ran) beside 2 ticks"
    )


def _launch(services) -> Any:
    with Session(services.engine) as session:
        return session.exec(select(Milestone).where(Milestone.key == "beta-launch")).one()


def _vote(engine, poll_id: int, voter_id: int | None) -> str | None:
    with Session(engine) as session:
        row = session.exec(
            select(Vote).where(Vote.poll_id == poll_id, Vote.voter_id == voter_id)
        ).first()
        return row.option if row is not None else None


def _assert_fanned_out_once(engine, standin, fan_out: list[str], answering: list[str]) -> None:
    """Each owner got one prompt DM from the ticks; each fan-out initiative has one sent pulse."""
    delivered = Counter(
        c.params["channel"]
        for c in standin.calls("chat.postMessage")
        if c.ok and c.params.get("channel") in {*fan_out, *answering}
    )
    assert delivered == Counter({owner: 1 for owner in [*fan_out, *answering]}), delivered
    with Session(engine) as session:
        rows = session.exec(
            select(PulseRequest, Person.slack_id)
            .join(Person, col(Person.id) == PulseRequest.owner_id)
            .where(col(Person.slack_id).in_(fan_out))
        ).all()
    assert len(rows) == 2 * len(fan_out)
    assert {pulse.state for pulse, _ in rows} == {PulseState.SENT}


def test_a_write_that_never_gets_the_lock_is_told_as_not_saved(bot, services, standin):
    """SQLite only: another process holds the file's write lock past the bot's busy timeout
    (cut to 0.2 s here, 30 s in production): the owner is told their answer was not saved."""
    if services.engine.dialect.name != "sqlite":
        pytest.skip("the file lock is SQLite's; PostgreSQL: tests/test_db_faults_postgres.py")
    [(owner, pulse_id)] = owners_with_prompts(services, standin, 1).items()
    event.listen(services.engine, "connect", _short_busy_timeout)
    services.engine.dispose()  # connections made from now on wait 0.2 s for the lock
    holder = sqlite3.connect(str(make_url(services.settings.database_url).database))
    try:
        holder.execute("BEGIN IMMEDIATE")  # what a long write in another process looks like
        assert status_click(bot, STATUSES[0], pulse_id, user_id=owner).status_code == 200
        [told] = standin.wait_for("response_url", timeout=10)
        bot.wait_idle()
    finally:
        holder.rollback()
        holder.close()
    assert told.params["text"] == (
        "Sorry, your pulse answer was not saved because my database is not answering;"
        " please try again in a minute."
    )
    assert answers_of(services, pulse_id) == []
    assert standin.calls("chat.update") == []


def _short_busy_timeout(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=200")
