"""Load on two `planpulse serve` replicas during a fan-out: acks, answer times, RSS, duplicates.

Issue 12, section 6. One PostgreSQL schema of its own (created and dropped here) holds a plan of
2,000 initiatives (bench/big_plan.py, placed at the real clock's now). First, as the plan's earlier
weeks would have left it, one detection and framing pass posts its standing alerts and framing DMs
(a freshly imported plan's backlog is not the Monday being measured). Then:

- every initiative's pulse is due now (a weekly cron firing at the bench's start minute, in its
  owner's own timezone: what a Monday 09:00 does), so a fan-out to 1,000 owners starts with the
  replicas and runs under the load;
- the weekly digest is due now too (to the decision channel, the default);
- the simulated users (people 0..49) are leaders, own two initiatives each and lead or belong to
  the provider teams; some open dependency requests are left unposted for the ticks to post, and
  a few milestones slip, for detection to raise in-run;
- decision polls are open on missed milestones, half of them closing half-way through the run.

The Slack stand-in runs in this process. Two real `planpulse serve` replicas (HTTP mode, scheduler
on unless `--no-scheduler`, `TICK_SECONDS` short so that their ticks overlap) run as subprocesses,
plus `planpulse tick` started every `--tick-every` seconds as cron would, all on one database.
Then `--users` threads, each pausing 0.5-1.5 s between requests, send signed requests round robin
to the replicas for `--seconds` (a connection per request): slash commands (/kpi, /kpi <key>,
/plan <key>, /pulse), button clicks (pulse answers, dependency acknowledgements, votes) and
pulse-details modal submissions. A person with nothing of a kind to act on yet (no prompt in
their DM) sends a command instead.

Reported (`run()` returns them as `Figure` rows; `main()` prints them): requests sent, errors
(non-200, timeouts, or an error text of handlers/errors.py in an ack or a response_url answer),
commands shed with the busy reply (not errors), the share acknowledged within 3 s and the ack's
p50/p99 as the client measures it, the answer's p50/p99 (the ack; or, for a request acknowledged
empty whose answer comes through its response_url, the moment the stand-in received that), the
CPU each process used, each replica's RSS at start (healthy, before the load), by quarters and at
end, and, once the replicas have stopped, the duplicate checks: in the database (its unique keys)
and in what the stand-in received (one prompt per owner DM per period, one post per alert, poll,
outcome, digest and dependency request, by the messages' metadata tags; setup's posts included),
plus tracebacks in the bots' logs. After the load, the bench waits (up to `SETTLE_S`) for every
answer a command still owes before stopping the replicas with SIGTERM.

Clients, stand-in and bench share one interpreter beside the replicas, PostgreSQL and the cron
ticks on a shared 2-core machine: the latencies are an upper bound, and noisy. The load average
is printed.

Run: .venv/bin/python -m bench.bench_load [--seconds 60 --users 50 --initiatives 2000]
     [--no-scheduler] [--logs DIR]     (about 4 minutes at the defaults)
PostgreSQL: PLANPULSE_BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test).
Exit status 0 unless the bench itself crashed; a missed goal is reported, not an exit status.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench.bench_votes import database
from bench.big_plan import TIMEZONE, PlanSize, bench_workspace, build_big_plan, describe
from bench.figures import Figure as TableFigure

log = logging.getLogger("bench.bench_load")

SECRET = "bench-load-signing-secret-0123456789abcdef"
ACK_LIMIT_S = 3.0  # Slack's
ANSWER_P99_GOAL_S = 1.0
RSS_GROWTH_GOAL = 0.30
TICK_SECONDS = 15  # each replica's scheduler: short, so that the replicas' ticks overlap
POLLS = 10  # open decision polls; half close during the run
NEW_SLIPS = 20  # open milestones that slip at the start: raised, framed in-run
REQUESTS_TO_POST = 4  # per provider team: dependency requests left for the ticks to post
SETTLE_S = 300.0  # at most, after the load, for answers still on their way

# What each simulated person does, with its weight.
MIX = {
    "kpi": 8,
    "kpi_key": 10,
    "plan_key": 10,
    "pulse": 8,
    "pulse_answer": 22,
    "pulse_details": 10,
    "dependency": 16,
    "vote": 16,
}
COMMANDS = ("kpi", "kpi_key", "plan_key", "pulse")


def Figure(
    name: str, value: str, goal: str = "", context: str = "", met: bool | None = None
) -> TableFigure:
    """One row of this benchmark in `make bench`'s table; `context` is what it is read against."""
    return TableFigure("load", name, value, goal, context, met)


@dataclass
class Sent:
    """One request a simulated person sent, and what came back."""

    kind: str
    replica: int
    sent_at: float  # time.time(), the stand-in's clock too
    ack_s: float = 0.0
    status: int = 0  # 0: no HTTP answer (timeout, connection refused)
    body: str = ""
    response_url: str | None = None  # the stand-in's key of the request's response_url
    answer_s: float | None = None  # set after the run
    via_response_url: bool = False


@dataclass
class Replica:
    number: int
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    rss_start_kb: int = 0
    rss_end_kb: int = 0
    exit_status: int | None = None  # None: killed after the graceful stop's wait
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (s into the load, kB)
    cpu_during_load: float = 0.0  # seconds of CPU used while the users ran

    def rss_at(self, seconds: float) -> int:
        """The first sample at or after `seconds` into the load (the end's when there is none)."""
        return next((kb for at, kb in self.rss_samples if at >= seconds), self.rss_end_kb)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Scenario:
    """What the simulated people can act on, found in the plan once it is built."""

    users: list[str]  # Slack IDs
    channels_of: dict[str, list[str]]  # user → channels of the teams they provide for
    kpi_keys: list[str]
    initiative_keys: list[str]
    decisions_channel: str
    polls: list[int]
    closing_polls: list[int]


@dataclass
class Ticks:
    runs: list[tuple[int, float]] = field(default_factory=list)  # (exit status, seconds)
    thread: threading.Thread | None = None
    peak_rss_kb: int = 0


# --- the plan ------------------------------------------------------------------------------------


def plan_size(initiatives: int) -> PlanSize:
    """big_plan's mix at `initiatives`: a KPI per five initiatives, 1% of them slipping."""
    factor = initiatives / PlanSize().initiatives
    slipping = max(POLLS, initiatives // 100)
    return PlanSize(
        initiatives=initiatives,
        kpis=max(10, initiatives // 5),
        overdue_milestones=slipping,
        overdue_dependencies=slipping,
        unacknowledged=slipping,
    ).scaled(factor)


def weekly_fire(at: datetime, zone: str) -> str:
    """A weekly cron whose latest fire is `at`'s minute in `zone`: due now, as at Monday 09:00."""
    local = at.astimezone(ZoneInfo(zone))
    return f"{local.minute} {local.hour} * * {local.strftime('%a').lower()}"


def prepare_plan(
    url: str, standin: Any, initiatives: int, users: int, now: datetime
) -> tuple[Scenario, str]:
    """Build the plan at `now` and set the scenario up; the plan's one-line description."""
    from sqlalchemy import delete, func, update
    from sqlmodel import Session, col, select

    from bot.decisions.opening import open_poll
    from storage.db import make_engine, session_scope, upgrade
    from storage.models import (
        Dependency,
        DependencyRequest,
        DependencyState,
        DigestTo,
        Initiative,
        Kpi,
        Milestone,
        MilestoneStatus,
        Person,
        PlanSettings,
        Team,
        TeamMember,
    )

    engine = make_engine(url)
    try:
        upgrade(engine)
        built = build_big_plan(engine, plan_size(initiatives), now=now)
        with session_scope(engine) as session:
            people = session.exec(select(Person).order_by(col(Person.id)).limit(users)).all()
            user_ids = [int(p.id or 0) for p in people]
            session.execute(
                update(Person).where(col(Person.id).in_(user_ids)).values(is_leader=True)
            )
            today = now.astimezone(ZoneInfo(TIMEZONE)).date()
            slipped = session.exec(
                select(Milestone)
                .where(
                    Milestone.status == MilestoneStatus.OPEN,
                    Milestone.due < today,  # type: ignore[operator]
                    col(Milestone.archived).is_(False),
                )
                .order_by(col(Milestone.id))
                .limit(POLLS)
            ).all()
            polls = [
                open_poll(session, milestone=m, framing=None, now=now).poll_id for m in slipped
            ]
        steady_state(url, standin, now)
        with session_scope(engine) as session:
            # A few milestones slip now: detection raises them, and frames their polls, in-run.
            session.execute(
                update(Milestone)
                .where(
                    col(Milestone.id).in_(
                        select(Milestone.id)
                        .where(Milestone.status == MilestoneStatus.OPEN, Milestone.due > today)  # type: ignore[operator]
                        .order_by(col(Milestone.id))
                        .limit(NEW_SLIPS)
                    )
                )
                .values(due=today - timedelta(days=1))
            )
            for zone in {p.tz for p in session.exec(select(Person)).all() if p.tz}:
                owners = select(Person.id).where(Person.tz == zone)
                session.execute(
                    update(Initiative)
                    .where(col(Initiative.owner_id).in_(owners))
                    .values(pulse=weekly_fire(now, zone))
                )
            settings = session.get(PlanSettings, 1)
            assert settings is not None
            settings.digest = weekly_fire(now, TIMEZONE)
            settings.digest_to = DigestTo.CHANNEL
            session.add(settings)

            # Who provides for which team: its lead and its members.
            teams: dict[int, set[int]] = defaultdict(set)
            for team in session.exec(select(Team)).all():
                teams[int(team.id or 0)].add(team.lead_id or 0)
            for member in session.exec(select(TeamMember)).all():
                teams[member.team_id].add(member.person_id)
            channel_of = {int(t.id or 0): t.channel_id or "" for t in session.exec(select(Team))}
            slack_of = {int(p.id or 0): p.slack_id or "" for p in people}
            channels_of = {
                slack_of[pid]: [channel_of[t] for t, members in teams.items() if pid in members]
                for pid in user_ids
            }
            provided = [t for t, members in teams.items() if members & set(user_ids)]
            # A few requests per team not posted yet: the replicas' and cron's ticks race to post.
            unposted: list[int] = []
            for team_id in provided:
                unposted += session.exec(
                    select(Dependency.id)
                    .where(
                        Dependency.provider_team_id == team_id,
                        Dependency.state == DependencyState.REQUESTED,
                        col(Dependency.archived).is_(False),
                        Dependency.ack_due_at > now,  # type: ignore[operator]
                    )
                    .order_by(col(Dependency.id))
                    .limit(REQUESTS_TO_POST)
                ).all()
            session.execute(
                delete(DependencyRequest).where(col(DependencyRequest.dependency_id).in_(unposted))
            )

            kpi_keys = list(session.exec(select(Kpi.key).order_by(func.random()).limit(200)))
            initiative_keys = list(
                session.exec(select(Initiative.key).order_by(func.random()).limit(500))
            )
            decisions = settings.decisions_channel or ""
        with Session(engine) as session:
            from storage.models import ChannelStatus

            status = session.get(ChannelStatus, decisions)
            decisions_channel = status.channel_id if status and status.channel_id else decisions
    finally:
        engine.dispose()
    scenario = Scenario(
        users=[slack_of[pid] for pid in user_ids],
        channels_of=channels_of,
        kpi_keys=kpi_keys,
        initiative_keys=initiative_keys,
        decisions_channel=decisions_channel,
        polls=polls,
        closing_polls=polls[: len(polls) // 2],
    )
    return scenario, f"{describe(built)}; {len(unposted)} requests left to post; {len(polls)} polls"


def steady_state(url: str, standin: Any, now: datetime) -> None:
    """What the plan's earlier weeks left: its alerts posted, its slips framed, its polls posted.

    Without it the replicas' first ticks would do a freshly imported plan's whole backlog (1,400
    alerts, 400 framing DMs) under the load, which is not the Monday being measured.
    """
    from bot.services import Services
    from bot.settings import load_settings
    from bot.slack.gateway import SlackGateway
    from scheduler.tick import STEPS
    from storage.db import make_engine

    settings = load_settings(
        database_url=url,
        slack_bot_token=standin.workspace.bot_token,
        slack_signing_secret=SECRET,
        slack_app_token=None,
        slack_api_url=standin.api_url,
    )
    services = Services(
        settings=settings, engine=make_engine(url), slack=SlackGateway.from_settings(settings)
    )
    try:
        for step in ("directory", "detection", "decision_framing"):
            STEPS[step](services, now)
    finally:
        services.engine.dispose()


def close_soon(url: str, poll_ids: list[int], at: datetime) -> None:
    """Move the polls' deadline to `at`, so that the ticks close them (and post outcomes) in-run."""
    from sqlalchemy import update
    from sqlmodel import col

    from storage.db import make_engine, session_scope
    from storage.models import DecisionPoll

    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            session.execute(
                update(DecisionPoll)
                .where(col(DecisionPoll.id).in_(poll_ids))
                .values(deadline=at, original_deadline=at)
            )
    finally:
        engine.dispose()


# --- the processes -------------------------------------------------------------------------------


def _planpulse() -> str:
    return str(Path(sys.executable).parent / "planpulse")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bot_environment(url: str, standin: Any) -> dict[str, str]:
    """The environment of every bot process, as bot/settings.py reads it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PLANPULSE_"))}
    env.update(
        DATABASE_URL=url,
        SLACK_BOT_TOKEN=standin.workspace.bot_token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=standin.api_url,
        TICK_SECONDS=str(TICK_SECONDS),
        LOG_LEVEL="WARNING",
    )
    return env


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


@contextmanager
def replicas(
    count: int, env: dict[str, str], folder: Path, *, scheduler: bool = True
) -> Iterator[list[Replica]]:
    """`count` replicas of `planpulse serve`, each healthy (GET /healthz 200) before this yields."""
    started: list[Replica] = []
    try:
        for number in range(count):
            port = _free_port()
            log_path = folder / f"replica-{number}.log"
            with log_path.open("wb") as out:
                process = subprocess.Popen(
                    [
                        _planpulse(),
                        "serve",
                        "--port",
                        str(port),
                        *([] if scheduler else ["--no-scheduler"]),
                    ],
                    env={**env, "PORT": str(port)},
                    cwd=folder,  # no .env of the checkout is read
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append(Replica(number, port, process, log_path))
        deadline = time.monotonic() + 120
        for replica in started:
            while not _healthy(replica):
                if replica.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"replica {replica.number} did not start:\n{replica.log_path.read_text()}"
                    )
                time.sleep(0.2)
        yield started
    finally:
        for replica in started:
            if replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        for replica in started:
            try:
                replica.exit_status = replica.process.wait(60)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait(10)


def _healthy(replica: Replica) -> bool:
    try:
        return httpx.get(f"{replica.url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def sample_rss(running: list[Replica], stop: threading.Event) -> threading.Thread:
    """Each replica's RSS once a second until `stop`, to tell warming up from growing."""
    started = time.monotonic()

    def loop() -> None:
        while not stop.wait(1.0):
            for replica in running:
                if replica.process.poll() is None:
                    at = time.monotonic() - started
                    replica.rss_samples.append((at, rss_kb(replica.process.pid)))

    thread = threading.Thread(target=loop, name="rss", daemon=True)
    thread.start()
    return thread


def cron_ticks(env: dict[str, str], folder: Path, every: float, stop: threading.Event) -> Ticks:
    """`planpulse tick` every `every` seconds until `stop`, as cron runs it (on a thread)."""
    ticks = Ticks()

    def loop() -> None:
        with (folder / "cron-tick.log").open("ab") as out:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status = subprocess.run(
                        [_planpulse(), "tick"],
                        env=env,
                        cwd=folder,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        timeout=600,
                        check=False,
                    ).returncode
                except subprocess.TimeoutExpired:
                    status = -1  # killed by subprocess.run after 600 s
                elapsed = time.monotonic() - started
                ticks.runs.append((status, elapsed))
                stop.wait(max(0.0, every - elapsed))

    thread = threading.Thread(target=loop, name="cron-tick", daemon=True)
    thread.start()
    ticks.thread = thread
    return ticks


# --- the simulated people ------------------------------------------------------------------------


class People:
    """The simulated users: each builds what Slack would send for what they do next."""

    def __init__(self, standin: Any, scenario: Scenario, seed: int = 12) -> None:
        from standin.client import SlackSide

        self.standin = standin
        self.scenario = scenario
        self.slack = SlackSide(standin, signing_secret=SECRET)
        self.seed = seed
        self._rr = itertools.count()
        self._rr_lock = threading.Lock()

    def next_replica(self, count: int) -> int:
        with self._rr_lock:
            return next(self._rr) % count

    def request(self, kind: str, user: str, rng: random.Random) -> tuple[str, Any] | None:
        """(kind, SlackRequest) for `kind`, or None when there is nothing of that kind to act on."""
        from bot.decisions.poll_message import OPTIONS
        from bot.pulses.details import metadata_for
        from templates.ids import DependencyIds, PollIds, PulseDetailsIds, PulseIds

        s = self.slack
        if kind == "kpi":
            return kind, s.command("/kpi", "", user_id=user)
        if kind == "kpi_key":
            return kind, s.command("/kpi", rng.choice(self.scenario.kpi_keys), user_id=user)
        if kind == "plan_key":
            return kind, s.command("/plan", rng.choice(self.scenario.initiative_keys), user_id=user)
        if kind == "pulse":
            return kind, s.command("/pulse", "", user_id=user)
        if kind in ("pulse_answer", "pulse_details"):
            prompt = self._latest_prompt(user)
            if prompt is None:
                return None
            message, pulse_ids = prompt
            pulse_id = rng.choice(pulse_ids)
            if kind == "pulse_answer":
                action = rng.choice((PulseIds.ON_TRACK, PulseIds.AT_RISK, PulseIds.OFF_TRACK))
                payload = s.block_action_payload(
                    action,
                    str(pulse_id),
                    user_id=user,
                    channel_id=user,
                    block_id=f"{PulseIds.ACTIONS_BLOCK}:{pulse_id}",
                    message=message,
                )
                return kind, s.interaction(payload)
            values = {
                PulseDetailsIds.STATUS_BLOCK: {
                    PulseDetailsIds.STATUS: {
                        "type": "radio_buttons",
                        "selected_option": {"value": rng.choice(("on_track", "at_risk"))},
                    }
                },
                PulseDetailsIds.CONFIDENCE_BLOCK: {
                    PulseDetailsIds.CONFIDENCE: {
                        "type": "static_select",
                        "selected_option": {"value": str(rng.randint(1, 5))},
                    }
                },
                PulseDetailsIds.BLOCKERS_BLOCK: {
                    PulseDetailsIds.BLOCKERS: {
                        "type": "plain_text_input",
                        "value": "Waiting on the vendor's <!channel> & test data",
                    }
                },
            }
            payload = s.view_submission_payload(
                PulseDetailsIds.VIEW, values, user_id=user, private_metadata=metadata_for(pulse_id)
            )
            return kind, s.interaction(payload)
        if kind == "dependency":
            found = self._open_request(user, rng)
            if found is None:
                return None
            channel, message, dependency_id, action = found
            payload = s.block_action_payload(
                action,
                str(dependency_id),
                user_id=user,
                channel_id=channel,
                block_id=DependencyIds.ACTIONS_BLOCK,
                message=message,
            )
            return kind, s.interaction(payload)
        if kind == "vote":
            found_poll = self._open_poll(rng)
            if found_poll is None:
                return None
            message, poll_id = found_poll
            option = str(rng.choice(OPTIONS))
            payload = s.block_action_payload(
                f"{PollIds.VOTE}:{option}",
                f"{poll_id}:{option}",
                user_id=user,
                channel_id=self.scenario.decisions_channel,
                block_id=f"{PollIds.VOTE_BLOCK}:{poll_id}",
                message=message,
            )
            return kind, s.interaction(payload)
        raise ValueError(kind)

    def _latest_prompt(self, user: str) -> tuple[dict[str, Any], list[int]] | None:
        from bot.pulses.delivery import tagged_pulse_ids
        from templates.ids import MessageEvents

        for message in reversed(self.standin.messages(user)):
            tag = message.metadata or {}
            if tag.get("event_type") == MessageEvents.PULSE_PROMPT:
                ids = sorted(tagged_pulse_ids(tag.get("event_payload") or {}))
                if ids:
                    return message.as_dict(with_metadata=True), ids
        return None

    def _open_request(
        self, user: str, rng: random.Random
    ) -> tuple[str, dict[str, Any], int, str] | None:
        from templates.ids import DependencyIds, MessageEvents

        found = []
        for channel in self.scenario.channels_of.get(user, []):
            for message in self.standin.messages(channel):
                tag = message.metadata or {}
                if tag.get("event_type") != MessageEvents.DEPENDENCY_REQUEST:
                    continue
                buttons = _action_ids(message.blocks)
                for action in (DependencyIds.ACKNOWLEDGE, DependencyIds.DELIVERED):
                    if action in buttons:
                        dependency_id = int(tag["event_payload"]["dependency_id"])
                        found.append(
                            (channel, message.as_dict(with_metadata=True), dependency_id, action)
                        )
                        break
        return rng.choice(found) if found else None

    def _open_poll(self, rng: random.Random) -> tuple[dict[str, Any], int] | None:
        from templates.ids import MessageEvents, PollIds

        found = []
        for message in self.standin.messages(self.scenario.decisions_channel):
            tag = message.metadata or {}
            if tag.get("event_type") != MessageEvents.POLL or message.thread_ts:
                continue
            if any(a.startswith(f"{PollIds.VOTE}:") for a in _action_ids(message.blocks)):
                found.append(
                    (message.as_dict(with_metadata=True), int(tag["event_payload"]["poll_id"]))
                )
        return rng.choice(found) if found else None


def _action_ids(blocks: list[dict[str, Any]]) -> set[str]:
    return {
        str(element.get("action_id"))
        for block in blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    }


def simulate(
    people: People, replicas_: list[Replica], seconds: float, users: list[str]
) -> list[Sent]:
    """Every user in a thread until `seconds` have passed; what each sent and got back."""
    sent: list[Sent] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds
    kinds, weights = list(MIX), list(MIX.values())

    def one_user(number: int, user: str) -> None:
        rng = random.Random(people.seed * 1000 + number)
        # A connection per request, as requests from Slack's many hosts arrive: a kept-alive one
        # races uvicorn's idle timeout (5 s) and is sometimes reset just as it is reused.
        no_keepalive = httpx.Limits(max_keepalive_connections=0)
        clients = [httpx.Client(base_url=r.url, timeout=10, limits=no_keepalive) for r in replicas_]
        mine: list[Sent] = []
        try:
            time.sleep(rng.uniform(0, 1.0))  # people do not all start in the same millisecond
            while time.monotonic() < end:
                kind = rng.choices(kinds, weights)[0]
                built = people.request(kind, user, rng) or people.request(
                    rng.choice(COMMANDS), user, rng
                )
                assert built is not None
                kind, request = built
                replica = people.next_replica(len(replicas_))
                record = Sent(kind, replica, time.time(), response_url=_response_url_key(request))
                headers = {"Content-Type": request.content_type, **people.slack.signed(request)}
                started = time.perf_counter()
                try:
                    answer = clients[replica].post(
                        "/slack/events", content=request.body.encode(), headers=headers
                    )
                    record.status, record.body = answer.status_code, answer.text
                except httpx.HTTPError as exc:
                    record.body = f"{type(exc).__name__}: {exc}"
                record.ack_s = time.perf_counter() - started
                mine.append(record)
                time.sleep(rng.uniform(0.5, 1.5))
        finally:
            for client in clients:
                client.close()
            with lock:
                sent.extend(mine)

    threads = [
        threading.Thread(target=one_user, args=(n, u), name=f"user-{n}", daemon=True)
        for n, u in enumerate(users)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(seconds + 60)
    return sent


def _response_url_key(request: Any) -> str | None:
    from urllib.parse import parse_qs

    form = parse_qs(request.body)
    if "response_url" in form:
        url = form["response_url"][0]
    elif "payload" in form:
        url = json.loads(form["payload"][0]).get("response_url") or ""
    else:
        return None
    return url.rsplit("/", 1)[-1] or None


# --- after the run -------------------------------------------------------------------------------


@dataclass
class Texts:
    """The sentences that mean an error, or a shed command, in an answer."""

    errors: list[str]
    busy: str

    @classmethod
    def load(cls) -> Texts:
        from templates import render_mrkdwn

        errors = [
            render_mrkdwn("blocks/errors/unexpected.txt.j2"),
            render_mrkdwn("blocks/errors/bad_payload.txt.j2"),
            render_mrkdwn("blocks/errors/no_longer_active.txt.j2", what="button"),
            render_mrkdwn("blocks/errors/no_longer_active.txt.j2", what="form"),
            render_mrkdwn("blocks/errors/unknown_command.txt.j2", command="", help_command="")[:12],
        ]
        return cls([e[:40] for e in errors], render_mrkdwn("blocks/errors/busy.txt.j2")[:40])

    def is_error(self, text: str) -> bool:
        return any(e in text for e in self.errors) or "unhandled request" in text


def owed(sent: list[Sent]) -> set[str]:
    """The response_urls of commands acknowledged empty: each owes its answer through it."""
    return {
        r.response_url
        for r in sent
        if r.kind in COMMANDS and r.status == 200 and not r.body.strip("{} ") and r.response_url
    }


def settle(standin: Any, sent: list[Sent], timeout: float) -> float:
    """Wait until every owed answer came and the stand-in heard nothing new for 3 s; how long."""
    started = time.monotonic()
    waiting = owed(sent)
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() - started < timeout:
        calls = standin.calls()
        answered = {
            str(c.params.get("response_url_id")) for c in calls if c.method == "response_url"
        }
        if len(calls) != last:
            last, quiet_since = len(calls), time.monotonic()
        elif time.monotonic() - quiet_since >= 3 and waiting <= answered:
            break
        time.sleep(0.5)
    return time.monotonic() - started


def match_answers(sent: list[Sent], standin: Any) -> list[Any]:
    """Each request's answer time; the response_url calls (for the refusal and error counts)."""
    first: dict[str, float] = {}
    calls = standin.calls("response_url")
    for call in calls:
        key = str(call.params.get("response_url_id", ""))
        first.setdefault(key, call.at)
    for record in sent:
        at = first.get(record.response_url or "")
        empty = record.status == 200 and not record.body.strip("{} ")
        if at is not None and empty:
            # Acknowledged empty: the answer is what came through the response_url.
            record.answer_s, record.via_response_url = max(record.ack_s, at - record.sent_at), True
        elif empty and record.kind in COMMANDS:
            record.answer_s = float("inf")  # a command acked empty owes an answer: none came
        else:
            record.answer_s = record.ack_s
    return calls


def duplicates(url: str, standin: Any) -> dict[str, tuple[int, str]]:
    """Each kind of duplicate: (count, what was counted), in the database and in Slack."""
    from sqlalchemy import func, text
    from sqlmodel import Session, select

    from bot.pulses.delivery import tagged_pulse_ids
    from storage.db import make_engine
    from storage.models import Decision, DecisionPoll, DigestDelivery, PollState, PulseRequest
    from templates.ids import MessageEvents

    posted = [c for c in standin.calls("chat.postMessage") if c.ok]
    tagged: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in posted:
        metadata = call.params.get("metadata") or {}
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        tagged[str(metadata.get("event_type"))].append(
            {"channel": call.params.get("channel"), **(metadata.get("event_payload") or {})}
        )

    engine = make_engine(url)
    try:
        with Session(engine) as session:

            def grouped(sql: str) -> int:
                return int(session.execute(text(f"SELECT count(*) FROM ({sql}) AS d")).scalar_one())

            period_of = {
                int(pid): period
                for pid, period in session.exec(select(PulseRequest.id, PulseRequest.period))
            }
            db_pulses = grouped(
                "SELECT 1 FROM pulse_request GROUP BY initiative_id, period HAVING count(*) > 1"
            )
            db_votes = grouped("SELECT 1 FROM vote GROUP BY poll_id, voter_id HAVING count(*) > 1")
            db_decisions = grouped(
                "SELECT 1 FROM decision WHERE poll_id IS NOT NULL GROUP BY poll_id HAVING count(*) > 1"
            )
            db_digests = grouped(
                "SELECT 1 FROM digest_delivery GROUP BY period, recipient HAVING count(*) > 1"
            )
            db_alerts = grouped(
                "SELECT 1 FROM alert WHERE state = 'open' GROUP BY kind, subject HAVING count(*) > 1"
            )
            closed = session.exec(
                select(func.count())
                .select_from(DecisionPoll)
                .where(DecisionPoll.state != PollState.OPEN)
            ).one()
            decided = session.exec(select(func.count()).select_from(Decision)).one()
            digests = session.exec(select(func.count()).select_from(DigestDelivery)).one()
            pulse_states = dict(
                session.exec(
                    select(PulseRequest.state, func.count()).group_by(PulseRequest.state)
                ).all()
            )
    finally:
        engine.dispose()

    prompts_per_pulse = Counter(
        i for t in tagged[MessageEvents.PULSE_PROMPT] for i in tagged_pulse_ids(t)
    )
    prompts_per_dm_period = Counter(
        (t["channel"], period_of.get(min(tagged_pulse_ids(t), default=0)))
        for t in tagged[MessageEvents.PULSE_PROMPT]
    )
    alerts = Counter(
        a
        for t in tagged[MessageEvents.ALERT]
        if t.get("summary") != "yes"
        for a in str(t.get("alert_ids", "")).split(",")
    )

    def extra(counter: Counter[Any]) -> int:
        return sum(n - 1 for n in counter.values() if n > 1)

    def by(event: str, *keys: str) -> Counter[Any]:
        return Counter(tuple(str(t.get(k)) for k in keys) for t in tagged[event])

    return {
        "pulses": (
            db_pulses + extra(prompts_per_pulse) + extra(prompts_per_dm_period),
            f"pulse rows by state {pulse_states}; {len(tagged[MessageEvents.PULSE_PROMPT])} prompt"
            f" DMs posted, to {len(prompts_per_dm_period)} (DM, period)",
        ),
        "alerts": (
            db_alerts + extra(alerts),
            f"{len(alerts)} alerts posted on their own, "
            f"{sum(1 for t in tagged[MessageEvents.ALERT] if t.get('summary') == 'yes')} summaries",
        ),
        "votes": (db_votes, "Vote rows per (poll, voter)"),
        "outcomes": (
            db_decisions + extra(by(MessageEvents.POLL_OUTCOME, "poll_id")),
            f"{closed} polls closed, {decided} decisions, "
            f"{len(tagged[MessageEvents.POLL_OUTCOME])} outcome posts",
        ),
        "digests": (
            db_digests
            + extra(by(MessageEvents.DIGEST, "digest_id"))
            + extra(by(MessageEvents.DIGEST, "period", "channel")),
            f"{digests} digest deliveries, {len(tagged[MessageEvents.DIGEST])} digest posts",
        ),
        "poll posts": (
            extra(by(MessageEvents.POLL, "poll_id")),
            f"{len(tagged[MessageEvents.POLL])} poll parent messages",
        ),
        "dependency requests": (
            extra(by(MessageEvents.DEPENDENCY_REQUEST, "dependency_id", "revision")),
            f"{len(tagged[MessageEvents.DEPENDENCY_REQUEST])} request posts",
        ),
    }


def log_problems(paths: list[Path]) -> tuple[int, int, list[str]]:
    """Tracebacks and ERROR lines in the processes' logs, with the first few distinct lines."""
    tracebacks = errors = 0
    seen: list[str] = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("Traceback"):
                tracebacks += 1
            if re.search(r"\bERROR\b", line):
                errors += 1
                short = re.sub(r"^\S+ \S+ ", "", line)[:160]
                if short not in seen and len(seen) < 5:
                    seen.append(f"{path.name}: {short}")
    return tracebacks, errors, seen


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _mib(kb: int) -> str:
    return f"{kb / 1024:.0f} MiB"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# --- the run -------------------------------------------------------------------------------------


def run(
    *,
    seconds: float = 60,
    users: int = 50,
    initiatives: int = 2000,
    replica_count: int = 2,
    tick_every: float = 20,
    postgres_url: str | None = None,
    logs_to: Path | None = None,
    scheduler: bool = True,
) -> list[TableFigure]:
    """The whole benchmark; its figures as data (see `Figure`)."""
    from standin import StandIn

    load_before = os.getloadavg()
    now = datetime.now(UTC)
    size = plan_size(initiatives)
    standin = StandIn(bench_workspace(size)).start()
    figures: list[TableFigure] = []
    try:
        with database("postgresql", postgres_url) as url, tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            scenario, built = prepare_plan(url, standin, initiatives, users, now)
            env = bot_environment(url, standin)
            with replicas(replica_count, env, folder, scheduler=scheduler) as running:
                for replica in running:
                    replica.rss_start_kb = rss_kb(replica.process.pid)
                started = datetime.now(UTC)
                close_soon(url, scenario.closing_polls, started + timedelta(seconds=seconds * 0.5))
                stop, load_over = threading.Event(), threading.Event()
                ticks = cron_ticks(env, folder, tick_every, stop)
                sampler = sample_rss(running, load_over)
                people = People(standin, scenario)
                cpu_before = {r.number: cpu_seconds(r.process.pid) for r in running}
                own_before = time.process_time()
                sent = simulate(people, running, seconds, scenario.users)
                own_cpu = time.process_time() - own_before
                for replica in running:
                    replica.cpu_during_load = (
                        cpu_seconds(replica.process.pid) - cpu_before[replica.number]
                    )
                load_during = os.getloadavg()
                load_over.set()
                sampler.join(5)
                for replica in running:
                    replica.rss_end_kb = rss_kb(replica.process.pid)
                settled = settle(standin, sent, SETTLE_S)
                stop.set()
                if ticks.thread is not None:
                    ticks.thread.join(600)
                # Only the cron ticks have been waited for so far: their peak, not the replicas'.
                ticks.peak_rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            # Replicas stopped: nothing more can be posted. Now count.
            calls = match_answers(sent, standin)
            found = duplicates(url, standin)
            logs = [r.log_path for r in running] + [folder / "cron-tick.log"]
            tracebacks, error_lines, first_errors = log_problems(logs)
            if logs_to is not None:
                logs_to.mkdir(parents=True, exist_ok=True)
                for path in logs:
                    if path.exists():
                        shutil.copy(path, logs_to / path.name)
        figures = _figures(
            sent=sent,
            calls=calls,
            running=running,
            ticks=ticks,
            found=found,
            seconds=seconds,
            users=users,
            built=built,
            logs=(tracebacks, error_lines, first_errors),
            own_cpu=own_cpu,
            settled=settled,
            load=(load_before, load_during, os.getloadavg()),
        )
    finally:
        standin.stop()
    return figures


def _figures(
    *,
    sent: list[Sent],
    calls: list[Any],
    running: list[Replica],
    ticks: Ticks,
    found: dict[str, tuple[int, str]],
    seconds: float,
    users: int,
    built: str,
    logs: tuple[int, int, list[str]],
    load: tuple[tuple[float, float, float], ...],
    own_cpu: float,
    settled: float,
) -> list[TableFigure]:
    texts = Texts.load()
    shed = [r for r in sent if r.status == 200 and texts.busy in r.body]
    failed = [
        r for r in sent if r.status != 200 or (texts.is_error(r.body) and texts.busy not in r.body)
    ]
    late_errors = [c for c in calls if texts.is_error(str(c.params.get("text", "")))]
    bad_urls = [c for c in calls if not c.ok]
    errors = len(failed) + len(late_errors) + len(bad_urls)
    statuses = Counter(str(r.status) for r in sent)
    within = sum(1 for r in sent if r.status and r.ack_s <= ACK_LIMIT_S)
    acks = [r.ack_s for r in sent]
    answers = [r.answer_s for r in sent if r.answer_s is not None]
    via_url = [r.answer_s for r in sent if r.via_response_url and r.answer_s is not None]
    missing = sum(1 for r in sent if r.answer_s == float("inf"))
    by_kind = Counter(r.kind for r in sent)
    commands = sum(by_kind[k] for k in COMMANDS)
    # What came through the response_urls (a /pulse answer, a vote's confirmation, a refusal such
    # as a poll that closed meanwhile): context for the error count.
    user_texts = Counter(
        str(c.params.get("text", ""))[:60]
        for c in calls
        if c.ok and not texts.is_error(str(c.params.get("text", "")))
    )
    share = within / len(sent) if sent else 0.0
    p99_answer = _percentile(answers, 0.99)
    load_text = "load average (1, 5, 15 min): " + "; ".join(
        f"{name} {a:.2f} {b:.2f} {c:.2f}"
        for name, (a, b, c) in zip(("before", "during", "after"), load, strict=True)
    )
    figures = [
        Figure("machine", f"{os.cpu_count()} cores", context=load_text),
        Figure("plan", f"{users} users, {seconds:.0f} s", context=built),
        Figure(
            "CPU used during the load",
            f"{sum(r.cpu_during_load for r in running) + own_cpu:.0f} s of {seconds * (os.cpu_count() or 1):.0f} s",
            context=", ".join(f"replica {r.number} {r.cpu_during_load:.0f} s" for r in running)
            + f", bench process (users and stand-in) {own_cpu:.0f} s; cron ticks and PostgreSQL besides",
        ),
        Figure(
            "requests sent",
            f"{len(sent)} ({len(sent) / seconds:.1f}/s)",
            context=", ".join(f"{k} {n}" for k, n in sorted(by_kind.items())),
        ),
        Figure(
            "errors",
            str(errors),
            "0",
            f"statuses {dict(statuses)}; error texts in acks {len(failed) - sum(1 for r in failed if r.status != 200)}, "
            f"in response_url answers {len(late_errors)}; response_url refused {len(bad_urls)}"
            + (
                f"; first: {failed[0].kind} {failed[0].status} {failed[0].body[:120]!r}"
                if failed
                else ""
            ),
            errors == 0,
        ),
        Figure(
            "shed (busy, try again)", f"{len(shed)} of {commands} commands", context="not errors"
        ),
        Figure(
            "acknowledged within 3 s",
            f"{100 * share:.2f}% ({within}/{len(sent)})",
            "100%",
            f"ack p50 {_ms(_percentile(acks, 0.5))}, p99 {_ms(_percentile(acks, 0.99))}, "
            f"max {_ms(max(acks, default=0))} (client-measured)",
            bool(sent) and within == len(sent),
        ),
        Figure(
            "answer p99",
            _ms(p99_answer),
            f"< {_ms(ANSWER_P99_GOAL_S)}",
            f"p50 {_ms(_percentile(answers, 0.5))}; {len(via_url)} through the response_url "
            f"(p50 {_ms(_percentile(via_url, 0.5))}, p99 {_ms(_percentile(via_url, 0.99))}); "
            f"{missing} commands acked empty never answered (counted as infinite); "
            f"the last answers came {settled:.0f} s after the load ended",
            p99_answer < ANSWER_P99_GOAL_S,
        ),
        Figure(
            "answers through response_urls",
            str(len(calls)),
            context="most frequent: "
            + "; ".join(f"{n} x {t!r}" for t, n in user_texts.most_common(4)),
        ),
    ]
    for replica in running:
        growth = (replica.rss_end_kb - replica.rss_start_kb) / max(1, replica.rss_start_kb)
        warm = replica.rss_at(seconds / 4)
        peak = max((kb for _, kb in replica.rss_samples), default=replica.rss_end_kb)
        figures.append(
            Figure(
                f"replica {replica.number} RSS growth",
                f"{100 * growth:+.1f}%",
                f"< {100 * RSS_GROWTH_GOAL:.0f}%",
                f"{_mib(replica.rss_start_kb)} at start (healthy, before the load); by quarters "
                + " / ".join(_mib(replica.rss_at(seconds * q / 4)) for q in (1, 2, 3))
                + f" / {_mib(replica.rss_end_kb)} at end; peak {_mib(peak)}; "
                f"from a quarter in to the end {100 * (replica.rss_end_kb - warm) / max(1, warm):+.1f}%",
                growth < RSS_GROWTH_GOAL,
            )
        )
    for name, (count, what) in found.items():
        figures.append(Figure(f"duplicated {name}", str(count), "0", what, count == 0))
    tracebacks, error_lines, first = logs
    figures.append(
        Figure(
            "tracebacks in the bots' logs",
            str(tracebacks),
            "0",
            f"{error_lines} ERROR lines" + (f"; first: {' | '.join(first)}" if first else ""),
            tracebacks == 0,
        )
    )
    figures.append(
        Figure(
            "replicas stopped by SIGTERM",
            ", ".join(
                f"replica {r.number}: "
                + ("killed" if r.exit_status is None else f"exit {r.exit_status}")
                for r in running
            ),
            "exit 0",
            "after the last answers; in-flight listener work finishes first",
            all(r.exit_status == 0 for r in running),
        )
    )
    failed_ticks = sum(1 for status, _ in ticks.runs if status != 0)
    figures.append(
        Figure(
            "cron ticks",
            f"{len(ticks.runs)} run, {failed_ticks} failed",
            context=f"besides each replica's scheduler (if on) every {TICK_SECONDS} s; durations "
            + ", ".join(f"{s:.1f}" for _, s in ticks.runs)
            + f" s; peak RSS of a tick {_mib(ticks.peak_rss_kb)}",
            met=None,
        )
    )
    return figures


def print_figures(figures: list[TableFigure]) -> None:
    print("| figure | measured | goal | met | context |")
    print("|---|---|---|---|---|")
    for f in figures:
        print(f"| {f.name} | {f.value} | {f.goal} | {f.verdict} | {f.floor} |")


def main(argv: list[str] | None = None, report: list[TableFigure] | None = None) -> int:
    """Run the benchmark and print it; `report` (bench/run_all.py) also receives its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--initiatives", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--tick-every", type=float, default=20, help="cron's `planpulse tick`, s")
    parser.add_argument("--logs", type=Path, help="keep the bots' logs in this folder")
    parser.add_argument(
        "--no-scheduler",
        action="store_true",
        help="replicas without their in-process tick (cron's alone): what the ticks cost them",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    figures = run(
        seconds=args.seconds,
        users=args.users,
        initiatives=args.initiatives,
        replica_count=args.replicas,
        tick_every=args.tick_every,
        logs_to=args.logs,
        scheduler=not args.no_scheduler,
    )
    print(
        f"## Load: {args.users} users on {args.replicas} replicas, {args.seconds:.0f} s, "
        f"{args.initiatives} initiatives on PostgreSQL"
        f"{', replicas without their scheduler' if args.no_scheduler else ''}\n"
    )
    print_figures(figures)
    if report is not None:
        report += figures
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
