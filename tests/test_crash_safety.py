"""Crash safety: `planpulse import` and `planpulse tick` SIGKILLed at random points, then run again.

One plan goes through a quarter's busiest moments — its import, a Monday pulse fan-out (with the
dependency requests, the missed milestones' alerts and their framing DMs), the polls opening,
the polls closing with their outcomes applied, the Friday digest, the next Monday's fan-out and
alert pass — each step as a real `planpulse` process against a SQLite file (or a PostgreSQL
schema when PLANPULSE_TEST_DATABASE_URL is set) and the stand-in Slack in this process. Each
process is killed (SIGKILL: no cleanup) at a random moment: right after the stand-in answered a
random one of its Web API calls (the post is in Slack, the bot has not recorded it yet), or
after a random delay (mid-transaction, between two calls). Each run again at now + the claims'
lease + a minute, as a restarted cron job would, until one runs to its end.

After every kill and every completed step, storage/invariants.py checks the database against
the stand-in's messages (by their metadata tags), and `planpulse check --settled` does it once
more at the end, through the Web API. The round must then have sent what a round without
crashes sends (an in-process reference, same plan, same instants): every pulse, request, poll,
outcome, digest and digest part once, every decision applied once. Reminders and the DMs an
alert sends its people carry no tag and are sent at most once (claimed, then posted): a kill
between the two loses one, which is counted, and none may ever be sent twice.

The stand-in's clock is moved to each run's instant (`clock_offset`), as a real Slack's clock
agrees with the bot's: recovery reads channel history from a little before its claim.

A new crashed round starts only within ROUND_BUDGET seconds (one always runs); the summary line
says how many rounds, processes, kills tried and landed, and invariant checks there were.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlmodel import Session, SQLModel, select

from bot.decisions.voting import cast_vote
from bot.planfile.importer import import_plan
from bot.planfile.validate import load_plan
from bot.services import Services
from bot.settings import load_settings
from bot.slack.gateway import SlackGateway
from scheduler.tick import run_tick
from standin import StandIn, User, Workspace
from storage.db import alembic_config, make_engine
from storage.invariants import TaggedPost, check_invariants
from storage.models import (
    DecisionOption,
    DecisionPoll,
    DependencyRequest,
    DigestDelivery,
    PollFraming,
    PulseRequest,
)
from templates.ids import MessageEvents, PollIds
from tests.conftest import PG_ENV, _drop_postgres_schema, _new_postgres_schema
from tests.slack_harness import row_counts

ROOT = Path(__file__).resolve().parent.parent
SEED = int(os.environ.get("CRASH_TEST_SEED", "20270118"))  # another seed explores other kill points
# Seconds after which no new crashed round starts (one always runs: ~35 s on a quiet 2-core
# machine, twice that under load). CRASH_TEST_BUDGET=600 explores longer.
ROUND_BUDGET = float(os.environ.get("CRASH_TEST_BUDGET", "20"))
ATTEMPTS_PER_STEP = 2  # runs that may be killed before one is left to finish
RESTART_AFTER = timedelta(minutes=11)  # every lease is 10 minutes (bot/*/delivery.py, ...)
OWNERS = 10
LEADERS = ("UCFO", "UCOO")
VOTES = (DecisionOption.DELAY, DecisionOption.DESCOPE, DecisionOption.ACCEPT_RISK)


def plan_yaml() -> str:
    """Ten owners in New York, each with a milestone missed on Friday 15 January 2027."""
    lines = [
        "organization: Crash Test Dummies",
        "timezone: America/New_York",
        "channels: {decisions: CDECISIONS, alerts: CDELIVERY}",
        f"leaders: [{', '.join(LEADERS)}]",
        'defaults: {pulse: "0 9 * * mon", ack_within_days: 2, poll_hours: 48}',
        "teams:",
        "  - {key: it, name: IT Delivery, channel: CDELIVERY, lead: UCIO}",
        "  - {key: marketing, name: Marketing, channel: CMARKETING, lead: UCMO}",
        "objectives:",
        "  - key: portal",
        "    title: Self-service portal",
        "    owner: UCOO",
        "    kpis:",
        "      - {key: adoption, name: Requests via portal, unit: '%', baseline: 8, target: 40,"
        " direction: up, start: 2026-10-01, due: 2027-09-30}",
        "initiatives:",
    ]
    for n in range(OWNERS):
        team, provider = ("it", "marketing") if n % 2 == 0 else ("marketing", "it")
        lines += [
            f"  - key: work-{n}",
            f"    title: Work stream {n}",
            "    objective: portal",
            f"    owner: {owner(n)}",
            f"    team: {team}",
            "    kpis: [adoption]",
            "    milestones:",
            f"      - {{key: ready-{n}, title: Ready {n}, due: 2027-01-15}}",
            f"      - {{key: launch-{n}, title: Launch {n}, due: 2027-03-01}}",
            "    dependencies:",
            f"      - {{key: needs-{n}, provider: {provider}, need: Help for {n},"
            f" needed_by: 2027-02-20, milestone: {'ready' if n % 3 == 0 else 'launch'}-{n}}}",
        ]
    return "\n".join(lines) + "\n"


def owner(n: int) -> str:
    return f"UCRASH{n:02d}"


def workspace() -> Workspace:
    space = Workspace.default()
    for n in range(OWNERS):
        space.add_user(User(id=owner(n), name=f"owner{n}", tz="America/New_York"))
    return space


# The instants of the quarter's busy moments (New York is UTC-5 in January).
MONDAY = datetime(2027, 1, 18, 14, 5, tzinfo=UTC)  # 09:05: pulses, requests, missed alerts
TUESDAY = datetime(2027, 1, 19, 15, 0, tzinfo=UTC)  # framing window over: the polls open
CLOSING = datetime(2027, 1, 19, 17, 0, tzinfo=UTC)  # every leader voted: closed, applied
FRIDAY = datetime(2027, 1, 22, 21, 5, tzinfo=UTC)  # 16:05: the weekly digest
NEXT_MONDAY = datetime(2027, 1, 25, 14, 5, tzinfo=UTC)  # pulses again, unacknowledged alerts
TICKS = (
    ("fan-out", MONDAY),
    ("polls open", TUESDAY),
    ("poll close", CLOSING),
    ("digest", FRIDAY),
    ("alert pass", NEXT_MONDAY),
)


@dataclass
class Tally:
    rounds: int = 0
    runs: int = 0
    kills_tried: int = 0
    kills_landed: int = 0  # the process was still running when SIGKILL came
    checks: int = 0
    untagged_lost: int = 0  # at-most-once messages (reminders, alert DMs) a kill cost
    by_step: Counter[str] = field(default_factory=Counter)


@dataclass
class Round:
    """One database and one stand-in Slack, taken through every step."""

    database_url: str
    standin: StandIn
    plan_path: Path

    def env(self) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "LOG_"))}
        return {
            **clean,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": self.database_url,
            "SLACK_BOT_TOKEN": self.standin.workspace.bot_token,
            "SLACK_API_URL": self.standin.api_url,
            "LOG_LEVEL": "WARNING",
            # Restarts come minutes later: a prompt they send still counts as on time.
            "PULSE_GRACE_MINUTES": "120",
        }

    def services(self) -> Services:
        settings = load_settings(
            database_url=self.database_url,
            slack_bot_token=self.standin.workspace.bot_token,
            slack_app_token=None,
            slack_api_url=self.standin.api_url,
            pulse_grace_minutes=120,
        )
        return Services(
            settings=settings,
            engine=make_engine(self.database_url),
            slack=SlackGateway.from_settings(settings),
        )

    def posts(self) -> list[TaggedPost]:
        state = self.standin.state
        with state.lock:
            return [
                TaggedPost(
                    channel=m.channel,
                    ts=m.ts,
                    event_type=str(m.metadata["event_type"]),
                    payload=dict(m.metadata.get("event_payload") or {}),
                    thread_ts=m.thread_ts,
                )
                for messages in state.messages.values()
                for m in messages
                if m.metadata and str(m.metadata.get("event_type", "")).startswith("planpulse_")
            ]


@contextmanager
def fresh_database(tmp_path: Path, name: str) -> Iterator[str]:
    """An empty database with the current schema, as tests/conftest.py's `database_url` makes."""
    base = os.environ.get(PG_ENV)
    if base:
        schema, url = _new_postgres_schema(base)
    else:
        url = f"sqlite:///{tmp_path / f'{name}.db'}"
    engine = make_engine(url)
    SQLModel.metadata.create_all(engine)
    command.stamp(alembic_config(engine), "head")
    engine.dispose()
    try:
        yield url
    finally:
        if base:
            _drop_postgres_schema(base, schema)


@contextmanager
def new_round(tmp_path: Path, name: str) -> Iterator[Round]:
    plan_path = tmp_path / "plan.yaml"
    if not plan_path.exists():
        plan_path.write_text(plan_yaml())
    standin = StandIn(workspace()).start()
    try:
        with fresh_database(tmp_path, name) as url:
            yield Round(url, standin, plan_path)
    finally:
        standin.stop()


def check(game: Round, tally: Tally, *, settled: bool, where: str) -> None:
    engine = make_engine(game.database_url)
    try:
        with Session(engine) as session:
            report = check_invariants(session, game.posts(), settled=settled)
    finally:
        engine.dispose()
    tally.checks += 1
    assert report.ok, f"{where}: {report.problems}"


def vote_everywhere(game: Round, now: datetime) -> int:
    """Both leaders vote on every open poll, the same option (so it closes at the next tick)."""
    services = game.services()
    try:
        with Session(services.engine) as session:
            polls = list(session.exec(select(DecisionPoll).order_by(DecisionPoll.id)))
        for poll in polls:
            option = VOTES[int(poll.id or 0) % len(VOTES)]
            for leader in LEADERS:
                cast_vote(
                    services,
                    user=leader,
                    block_id=f"{PollIds.VOTE_BLOCK}:{poll.id}",
                    value=f"{poll.id}:{option}",
                    action_id=f"{PollIds.VOTE}:{option}",
                    channel_id=poll.channel_id,
                    message_ts=poll.message_ts,
                    now=now,
                )
        return len(polls)
    finally:
        services.engine.dispose()


def outcome(game: Round) -> dict[str, object]:
    """What a round sent and decided, for comparing a crashed round with the reference."""
    engine = make_engine(game.database_url)
    try:
        counts = row_counts(engine)
        with Session(engine) as session:
            pulses = Counter(p.state for p in session.exec(select(PulseRequest)))
            requests = sum(1 for r in session.exec(select(DependencyRequest)) if r.message_ts)
            digests = [(d.recipient, d.thread_posted) for d in session.exec(select(DigestDelivery))]
            framings = sum(1 for f in session.exec(select(PollFraming)) if f.message_ts)
            polls = [
                (p.milestone_id, p.state, p.outcome, p.outcome_posted_at is not None)
                for p in session.exec(select(DecisionPoll).order_by(DecisionPoll.milestone_id))
            ]
    finally:
        engine.dispose()
    tagged = Counter(post.event_type for post in game.posts())
    charts = len(game.standin.uploaded_files())
    with game.standin.state.lock:  # knock-on questions, shift offers, reminders: no tag to go by
        # A DM's ID depends on the order the bot first wrote to each person: count by person.
        person = {channel: user for user, channel in game.standin.state.dms.items()}
        untagged = Counter(
            person.get(m.channel, m.channel)
            for messages in game.standin.state.messages.values()
            for m in messages
            if not m.metadata
        )
    return {
        "tables": {
            name: counts[name]
            for name in ("decision", "decision_poll", "pulse_request", "digest_delivery", "vote")
        },
        "pulses": dict(pulses),
        "requests posted": requests,
        "framings posted": framings,
        "digests": digests,
        "polls": polls,
        "charts uploaded": charts,  # a digest's KPI charts: thread replies with no tag
        "digest parts": digest_parts(game.posts()),
        # Reminders and alert DMs are sent at most once (claimed, then posted; no tag to look
        # for after a crash): compared apart, see `lost_untagged`.
        "untagged messages": dict(untagged),
        # Alerts are left out: how many go in one message depends on each tick's budget.
        "tagged posts": {k: v for k, v in tagged.items() if k != MessageEvents.ALERT},
    }


def digest_parts(posts: list[TaggedPost]) -> list[list[int]]:
    """Each digest's tagged thread parts, digests in ID order (IDs differ: PostgreSQL sequences
    move on conflicting inserts)."""
    parts: dict[int, list[int]] = {}
    for post in posts:
        if post.event_type == MessageEvents.DIGEST_PART:
            digest_id = int(str(post.payload.get("digest_id")))
            parts.setdefault(digest_id, []).append(int(str(post.payload.get("part"))))
    return [sorted(found) for _, found in sorted(parts.items())]


def lost_untagged(got: dict[str, object], expected: dict[str, object]) -> int:
    """Untagged messages the reference sent and a crashed round did not; never more than it."""
    mine, theirs = got.pop("untagged messages"), expected["untagged messages"]
    assert isinstance(mine, dict) and isinstance(theirs, dict)
    extra = {who: n for who, n in mine.items() if n > theirs.get(who, 0)}
    assert not extra, f"untagged messages sent more often than without crashes: {extra}"
    return sum(theirs.values()) - sum(mine.values())


def reference(tmp_path: Path) -> dict[str, object]:
    """The round without crashes, in this process: the same steps at the same instants."""
    with new_round(tmp_path, "reference") as game:
        services = game.services()
        try:
            import_plan(
                services.engine,
                load_plan(str(game.plan_path)),
                actor="cli:test",
                now=datetime.now(UTC),
            )
            for name, now in TICKS:
                for attempt in range(ATTEMPTS_PER_STEP + 1):
                    slack_clock_at(game, now + attempt * RESTART_AFTER)
                    report = run_tick(services, now + attempt * RESTART_AFTER)
                    assert report.ok, report.failed
                if name == "polls open":
                    assert vote_everywhere(game, now + ATTEMPTS_PER_STEP * RESTART_AFTER) == OWNERS
        finally:
            services.engine.dispose()
        return outcome(game)


def slack_clock_at(game: Round, now: datetime) -> None:
    """Slack's clock reads `now` from here on (message timestamps), as the bot's does."""
    with game.standin.state.lock:
        game.standin.state.clock_offset = now.timestamp() - time.time()


def run_killed(
    game: Round,
    args: list[str],
    rng: random.Random,
    tally: Tally,
    step: str,
    *,
    by_calls: int | None,
) -> bool:
    """Run `planpulse ARGS`, SIGKILLed after a random number of Web API calls or a random delay.

    True when the kill landed (the process was still running); False when it finished first.
    """
    before = len(game.standin.calls())
    calls_to_kill = rng.randint(1, by_calls) if by_calls else None
    delay = rng.uniform(0.05, 1.5)
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.entry.cli", *args],
        cwd=game.plan_path.parent,
        env=game.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    started = time.monotonic()
    tally.runs += 1
    tally.kills_tried += 1
    while process.poll() is None:
        if calls_to_kill is not None:
            due = len(game.standin.calls()) - before >= calls_to_kill
        else:
            due = time.monotonic() - started >= delay
        if due:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.001)
    process.wait(timeout=60)
    stderr = process.stderr.read().decode() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    if process.returncode == -signal.SIGKILL:
        tally.kills_landed += 1
        tally.by_step[step] += 1
        return True
    assert process.returncode == 0, stderr
    return False


def run_to_end(game: Round, args: list[str], tally: Tally) -> int:
    """Run `planpulse ARGS` to its end; how many Web API calls it made."""
    before = len(game.standin.calls())
    result = subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", *args],
        cwd=game.plan_path.parent,
        env=game.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    tally.runs += 1
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return len(game.standin.calls()) - before


def crashed_round(
    tmp_path: Path, name: str, rng: random.Random, tally: Tally, calls: dict[str, int]
) -> dict[str, object]:
    with new_round(tmp_path, name) as game:
        importing = ["import", str(game.plan_path)]
        for _ in range(ATTEMPTS_PER_STEP):
            run_killed(game, importing, rng, tally, "import", by_calls=None)
            check(game, tally, settled=False, where=f"{name}, import killed")
        run_to_end(game, importing, tally)
        check(game, tally, settled=True, where=f"{name}, import")
        for step, now in TICKS:
            at = now
            for _ in range(ATTEMPTS_PER_STEP):
                # Half the kills land right after a Web API call, half at a moment in time.
                by_calls = calls.get(step, 40) if rng.random() < 0.5 else None
                ticking = ["tick", "--now", at.isoformat()]
                slack_clock_at(game, at)
                if run_killed(game, ticking, rng, tally, step, by_calls=by_calls):
                    check(game, tally, settled=False, where=f"{name}, {step} killed at {at}")
                at += RESTART_AFTER
            slack_clock_at(game, at)
            made = run_to_end(game, ["tick", "--now", at.isoformat()], tally)
            calls[step] = max(calls.get(step, 0), made, 1)
            check(game, tally, settled=True, where=f"{name}, {step} at {at}")
            if step == "polls open":
                vote_everywhere(game, at)
        # The same invariants as an operator checks them: read back through the Web API.
        run_to_end(game, ["check", "--settled"], tally)
        tally.checks += 1
        tally.rounds += 1
        return outcome(game)


def test_killed_at_random_points_everything_is_sent_and_applied_once(tmp_path) -> None:
    """Runs on SQLite, and on PostgreSQL (one schema per round) when PLANPULSE_TEST_DATABASE_URL
    is set: the child processes get the schema's URL as DATABASE_URL."""
    started = time.monotonic()
    expected = reference(tmp_path)
    print(f"\nreference round: {time.monotonic() - started:.1f}s")
    assert expected["tables"]["decision"] == OWNERS  # type: ignore[index]
    # Last Friday's digest, late on Monday, and this Friday's.
    assert expected["tagged posts"][MessageEvents.DIGEST] == 2  # type: ignore[index]
    rng = random.Random(SEED)
    tally = Tally()
    calls: dict[str, int] = {}
    crash_started = time.monotonic()
    while tally.rounds == 0 or time.monotonic() - crash_started < ROUND_BUDGET:
        got = crashed_round(tmp_path, f"round-{tally.rounds}", rng, tally, calls)
        tally.untagged_lost += lost_untagged(got, expected)
        assert got == {k: v for k, v in expected.items() if k != "untagged messages"}, (
            f"round {tally.rounds}: {got} != {expected}"
        )
    print(
        f"\ncrash safety: {tally.rounds} rounds, {tally.runs} processes, "
        f"{tally.kills_tried} kills tried, {tally.kills_landed} landed "
        f"({dict(tally.by_step)}), {tally.checks} invariant checks, "
        f"{tally.untagged_lost} at-most-once DMs lost to kills, "
        f"{time.monotonic() - started:.1f}s"
    )
    assert tally.kills_landed >= tally.kills_tried // 2
