"""Decision poll votes under load: N leaders clicking at once through the real HTTP server.

One poll with N leaders (50 by default), posted in the stand-in's decision channel. The bot is
the real ASGI app (`bot.entry.server.build_asgi_app` + Bolt) under uvicorn, the stand-in plays
Slack. Round 1: every leader votes at the same moment (N client threads released by a barrier,
each sending one signed block_actions request). Round 2: every leader changes their vote, all at
once again. Clients, stand-in and bot share one interpreter (as in tests/slack_harness.py), so
they compete for the same GIL and cores: the latencies are an upper bound for one replica.
For each round it reports the latency of the HTTP answer (the ack) as the client
sees it, p50/p99/max, and checks that every vote counted once (N Vote rows, each with the
option last clicked), that the parent message's tally, once the listeners and then one tick's
`poll_tallies` step have run, says what the database says, and that every request was
answered well within Slack's 3 seconds.

Run: .venv/bin/python -m bench.bench_votes --databases sqlite,postgresql [--leaders 50]
PostgreSQL: PLANPULSE_BENCH_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test),
in a schema of its own, dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.figures import Figure

SECRET = "bench-signing-secret-0123456789abcdef"
POSTGRES_DEFAULT = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DECISIONS = "CDECISIONS"
ACK_BUDGET_S = 3.0  # Slack's limit for the ack
WELL_WITHIN_S = 1.0  # what "well within" means here
PROPOSED = date(2027, 2, 27)


@dataclass
class RoundResult:
    name: str
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    over_1s: int  # answered after WELL_WITHIN_S
    over_3s: int  # answered after Slack's limit: a failure
    vote_rows: int
    counted_once: bool  # one row per leader, each with the option they last clicked
    tally_right_before_tick: bool  # the listeners alone left the message right
    tally_consistent: bool  # after the tick: the message says what the database says
    redrawn_by_tick: int
    chat_updates: int
    thread_lines: int
    settle_s: float  # from the first request to the last listener finished


@dataclass
class BenchResult:
    database: str
    leaders: int
    rounds: list[RoundResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(
            r.counted_once
            and r.tally_consistent
            and r.over_3s == 0
            and r.statuses == {"200": r.requests}
            for r in self.rounds
        )


class TrackingExecutor(ThreadPoolExecutor):
    """Bolt's listener executor, counting unfinished work so the bench knows when it settled."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="bench-listener")
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise RuntimeError(f"listeners still running after {timeout}s")


# --- the database -------------------------------------------------------------------------------


@contextmanager
def database(kind: str, postgres_url: str | None = None) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    from sqlalchemy import text

    from storage.db import make_engine

    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench-votes.db'}"
        return
    if kind != "postgresql":
        raise SystemExit(f"unknown database {kind!r}: sqlite or postgresql")
    base = postgres_url or os.environ.get("PLANPULSE_BENCH_POSTGRES_URL") or POSTGRES_DEFAULT
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def leader_ids(leaders: int) -> list[str]:
    return [f"ULDR{n:05d}" for n in range(leaders)]


def build_poll(services: Any, leaders: int) -> int:
    """A plan with `leaders` leaders and one open poll about its milestone, posted to Slack."""
    from bot.decisions.poll_message import draw_poll
    from storage.db import session_scope
    from storage.decisions import mark_poll_shown
    from storage.models import (
        DecisionPoll,
        Initiative,
        Milestone,
        Person,
        PlanSettings,
        PollState,
        Team,
    )

    now = datetime.now(UTC)
    with session_scope(services.engine) as session:
        session.add(PlanSettings(id=1, organization="Bench", timezone="America/New_York"))
        owner = Person(slack_id="UALICE", name="Alice", email="alice@bench.example")
        session.add(owner)
        for n, slack_id in enumerate(leader_ids(leaders)):
            session.add(
                Person(slack_id=slack_id, name=f"Leader {n}", email=f"l{n}@b.ex", is_leader=True)
            )
        session.flush()
        team = Team(key="it", name="IT", lead_id=owner.id)
        session.add(team)
        session.flush()
        initiative = Initiative(
            key="portal", title="Portal", owner_id=owner.id, team_id=team.id, active_since=now
        )
        session.add(initiative)
        session.flush()
        milestone = Milestone(
            key="launch",
            title="Launch",
            initiative_id=initiative.id,
            due=date(2027, 2, 1),
            original_due=date(2027, 2, 1),
        )
        session.add(milestone)
        session.flush()
        poll = DecisionPoll(
            milestone_id=milestone.id,
            open_key=f"milestone:{milestone.id}",
            state=PollState.OPEN,
            opened_at=now,
            original_deadline=now + timedelta(hours=48),
            deadline=now + timedelta(hours=48),
            proposed_due=PROPOSED,
            facts={
                "milestone_id": milestone.id,
                "milestone_key": "launch",
                "milestone_title": "Launch",
                "initiative_key": "portal",
                "initiative_title": "Portal",
                "owner": "UALICE",
                "original_due": "2027-02-01",
                "due": "2027-02-01",
                "slip_days": 3,
                "cause": "missed",
                "dependency": None,
                "later_milestones": [],
                "waiting_dependencies": [],
                "kpis": [],
            },
        )
        session.add(poll)
        session.flush()
        assert poll.id is not None
        poll_id = poll.id
    with session_scope(services.engine) as session:
        drawn = draw_poll(session, poll_id)
        assert drawn is not None
        message = drawn[1]
    posted = services.slack.post_message(
        channel=DECISIONS, text=message.text, blocks=message.blocks
    )
    with session_scope(services.engine) as session:
        row = session.get(DecisionPoll, poll_id)
        assert row is not None
        row.channel_id, row.message_ts = posted.channel, posted.ts
        session.add(row)
        session.flush()
        mark_poll_shown(session, poll_id, message.fingerprint)
    return poll_id


# --- the server ---------------------------------------------------------------------------------


@contextmanager
def running_bot(services: Any, workers: int) -> Iterator[tuple[str, TrackingExecutor]]:
    import uvicorn

    from bot.entry.app import create_app
    from bot.entry.server import build_asgi_app

    executor = TrackingExecutor(workers)
    asgi = build_asgi_app(services, bolt_app=create_app(services, listener_executor=executor))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(asgi, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the bot's HTTP server did not start")
        time.sleep(0.01)
    host, port = sock.getsockname()[:2]
    try:
        yield f"http://{host}:{port}", executor
    finally:
        executor.wait_idle(60)
        server.should_exit = True
        thread.join(10)
        executor.shutdown(wait=True)
        sock.close()


# --- one round ----------------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def click_all(
    base_url: str, slack: Any, poll_id: int, choices: dict[str, str], message: dict[str, Any]
) -> tuple[list[float], Counter[str]]:
    """Every leader clicks their choice at the same moment; the ack latency of each, in seconds."""
    from standin.client import sign
    from templates.ids import PollIds

    bodies = []
    for user, option in choices.items():
        payload = slack.block_action_payload(
            f"{PollIds.VOTE}:{option}",
            f"{poll_id}:{option}",
            user_id=user,
            channel_id=DECISIONS,
            block_id=f"{PollIds.VOTE_BLOCK}:{poll_id}",
            message=message,
        )
        bodies.append(slack.interaction(payload).body)
    barrier = threading.Barrier(len(bodies))
    latencies: list[float] = [0.0] * len(bodies)
    statuses: Counter[str] = Counter()
    lock = threading.Lock()

    def one(index: int, body: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as client:
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                **sign(body, secret=SECRET),
            }
            barrier.wait()
            started = time.perf_counter()
            response = client.post("/slack/events", content=body.encode(), headers=headers)
            latencies[index] = time.perf_counter() - started
        with lock:
            statuses[str(response.status_code)] += 1

    threads = [threading.Thread(target=one, args=(i, b)) for i, b in enumerate(bodies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, statuses


def shown_counts(blocks: list[dict[str, Any]]) -> dict[str, int]:
    """The tally as the message in Slack shows it: option label → count."""
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        if block.get("type") == "section" and text.startswith("*Votes"):
            return {m[0]: int(m[1]) for m in re.findall(r"\n(.+?) — (\d+)", text)}
    return {}


def run_round(
    name: str,
    *,
    services: Any,
    standin: Any,
    slack: Any,
    base_url: str,
    executor: TrackingExecutor,
    poll_id: int,
    choices: dict[str, str],
) -> RoundResult:
    from sqlmodel import Session, select

    from bot.decisions.poll_message import draw_poll
    from bot.decisions.tallies import redraw_tallies
    from storage.models import DecisionPoll, Person, Vote

    with Session(services.engine) as session:
        poll = session.get(DecisionPoll, poll_id)
        assert poll is not None
        ts = poll.message_ts
    parent = next(m for m in standin.messages(DECISIONS) if m.ts == ts)
    updates_before = len(standin.calls("chat.update"))
    lines_before = sum(1 for m in standin.messages(DECISIONS) if m.thread_ts == ts)
    started = time.perf_counter()
    latencies, statuses = click_all(
        base_url, slack, poll_id, choices, parent.as_dict(with_metadata=True)
    )
    executor.wait_idle(120)
    settle = time.perf_counter() - started

    def consistent() -> bool:
        with Session(services.engine) as session:
            drawn = draw_poll(session, poll_id)
        assert drawn is not None
        message = drawn[1]
        shown = next(m for m in standin.messages(DECISIONS) if m.ts == ts)
        same = shown.text == message.text and shown.blocks == message.blocks
        return same and shown_counts(shown.blocks) == shown_counts(message.blocks)

    before_tick = consistent()
    report = redraw_tallies(services, datetime.now(UTC))
    after_tick = consistent()
    with Session(services.engine) as session:
        rows = session.exec(
            select(Person.slack_id, Vote.option).join(Person).where(Vote.poll_id == poll_id)
        ).all()
    stored = {str(slack_id): option for slack_id, option in rows}
    return RoundResult(
        name=name,
        requests=len(latencies),
        p50_ms=round(statistics.median(latencies) * 1000, 1),
        p99_ms=round(_percentile(latencies, 0.99) * 1000, 1),
        max_ms=round(max(latencies) * 1000, 1),
        statuses=dict(statuses),
        over_1s=sum(1 for s in latencies if s > WELL_WITHIN_S),
        over_3s=sum(1 for s in latencies if s > ACK_BUDGET_S),
        vote_rows=len(rows),
        counted_once=len(rows) == len(choices) and stored == choices,
        tally_right_before_tick=before_tick,
        tally_consistent=after_tick,
        redrawn_by_tick=report.redrawn,
        chat_updates=len(standin.calls("chat.update")) - updates_before,
        thread_lines=sum(1 for m in standin.messages(DECISIONS) if m.thread_ts == ts)
        - lines_before,
        settle_s=round(settle, 2),
    )


def run_bench(
    kind: str, leaders: int, *, workers: int = 16, postgres_url: str | None = None
) -> BenchResult:
    """Both rounds against a fresh database of `kind` ("sqlite" or "postgresql")."""
    from bot.decisions.poll_message import OPTIONS
    from bot.services import Services
    from bot.settings import load_settings
    from bot.slack.gateway import SlackGateway
    from standin import StandIn, User, Workspace
    from standin.client import SlackSide
    from storage.db import make_engine, upgrade

    workspace = Workspace.default()
    for n, slack_id in enumerate(leader_ids(leaders)):
        workspace.add_user(User(id=slack_id, name=f"leader{n}", real_name=f"Leader {n}"))
    standin = StandIn(workspace).start()
    result = BenchResult(database=kind, leaders=leaders)
    try:
        with database(kind, postgres_url) as url:
            settings = load_settings(
                database_url=url,
                slack_bot_token=workspace.bot_token,
                slack_signing_secret=SECRET,
                slack_app_token=None,
                slack_api_url=standin.api_url,
            )
            # Enough connections for every listener thread and the request threads beside them.
            engine = make_engine(settings.database_url, **_pool(kind, workers))
            upgrade(engine)
            services = Services(
                settings=settings, engine=engine, slack=SlackGateway.from_settings(settings)
            )
            try:
                poll_id = build_poll(services, leaders)
                slack = SlackSide(standin, signing_secret=SECRET)
                ids = leader_ids(leaders)
                with running_bot(services, workers) as (base_url, executor):
                    for name, shift in (("vote", 0), ("change", 1)):
                        choices = {
                            user: str(OPTIONS[(n + shift) % len(OPTIONS)])
                            for n, user in enumerate(ids)
                        }
                        result.rounds.append(
                            run_round(
                                name,
                                services=services,
                                standin=standin,
                                slack=slack,
                                base_url=base_url,
                                executor=executor,
                                poll_id=poll_id,
                                choices=choices,
                            )
                        )
            finally:
                engine.dispose()
    finally:
        standin.stop()
    return result


def _pool(kind: str, workers: int) -> dict[str, Any]:
    return {} if kind == "sqlite" else {"pool_size": workers + 4, "max_overflow": 20}


def main(argv: list[str] | None = None, report: list[Figure] | None = None) -> int:
    """Run the benchmark and print it; `report` (bench/run_all.py) also receives its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--databases", default="sqlite", help="comma-separated: sqlite,postgresql")
    parser.add_argument("--leaders", type=int, default=50)
    parser.add_argument("--workers", type=int, default=16, help="Bolt listener threads")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    ok = True
    for kind in [k.strip() for k in args.databases.split(",") if k.strip()]:
        result = run_bench(kind, args.leaders, workers=args.workers)
        ok = ok and result.ok
        print(json.dumps({"database": kind, "leaders": args.leaders, "ok": result.ok}))
        for round_result in result.rounds:
            print(json.dumps(asdict(round_result)))
            if report is not None:
                report += round_figures(kind, args.leaders, round_result)
    return 0 if ok else 1


def round_figures(kind: str, leaders: int, r: RoundResult) -> list[Figure]:
    where = f"{r.name}, {leaders} leaders at once, {kind}"
    return [
        Figure(
            "votes",
            f"vote click answered, p50 (p99) ({where})",
            f"{r.p50_ms:.0f} ms ({r.p99_ms:.0f} ms), max {r.max_ms:.0f} ms",
            "all within 3 s",
            "",
            r.over_3s == 0,
        ),
        Figure(
            "votes",
            f"every vote counted once, the tally right ({where})",
            "yes" if r.counted_once and r.tally_consistent else "no",
            "yes",
            "",
            r.counted_once and r.tally_consistent,
        ),
    ]


if __name__ == "__main__":
    raise SystemExit(main())
