"""Slash command latency: /kpi <key> and /plan <key> against a large plan, versus a bare Bolt app.

Builds a SQLite plan of 10,000 initiatives, 1,000 KPIs and 100,000 readings (bulk-inserted with
SQLAlchemy core), then starts two servers in subprocesses with the same stack (uvicorn +
`bot.entry.server.build_asgi_app` + Bolt + signature checks): the real PlanPulse app, and a bare Bolt
app whose /kpi and /plan listeners only ack. Each gets the same signed requests over loopback.
Latency is measured inside each server by an ASGI wrapper around the whole app (request
received → last response byte sent); client-side round trips are reported beside it. Each server
also reports its resident memory (VmRSS, VmHWM) after the run.

Run: .venv/bin/python -m bench.bench_commands [--requests 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from bench.figures import Figure, print_figures

INITIATIVES = 10_000
KPIS = 1_000
READINGS_PER_KPI = 100
PEOPLE = 1_000
TEAMS = 50
OBJECTIVES = 100
MILESTONES_PER_INITIATIVE = 3
SECRET = "bench-signing-secret-0123456789abcdef"
WARMUP = 50
GOAL_P50_RATIO = 3.0
GOAL_P99_MS = 100.0
GOAL_RSS_MB = 200.0
GOAL_INLINE_RATIO = 4.0  # issue 12 §7: our work per /plan <key> or pulse click, against a bare ack
GOAL_SCORECARD_MS = 50.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- the plan ---------------------------------------------------------------------------------


def build_plan(database_url: str) -> None:
    """Bulk-insert the benchmark plan; seeded, so every run queries the same data."""
    from sqlalchemy import insert
    from sqlmodel import SQLModel

    from storage.db import make_engine, upgrade
    from storage.models import (
        Dependency,
        Initiative,
        InitiativeKpi,
        Kpi,
        KpiReading,
        Milestone,
        Objective,
        Person,
        PlanSettings,
        PulseAnswer,
        PulseRequest,
        Team,
        TeamMember,
    )

    rng = random.Random(7)
    engine = make_engine(database_url)
    upgrade(engine)
    start, due = date(2026, 1, 5), date(2027, 12, 31)
    now = datetime(2026, 11, 23, 14, tzinfo=UTC)

    def rows(model: type[SQLModel], values: list[dict[str, Any]]) -> None:
        for chunk in range(0, len(values), 5_000):
            connection.execute(insert(model), values[chunk : chunk + 5_000])

    with engine.begin() as connection:
        rows(PlanSettings, [{"id": 1, "organization": "Bench", "timezone": "America/New_York"}])
        rows(
            Person,
            [
                {
                    "id": p + 1,
                    "slack_id": f"U{p:07d}",
                    "email": f"p{p}@bench.example",
                    "name": f"Person {p}",
                    "tz": "America/New_York",
                    "is_leader": p < 5,
                }
                for p in range(PEOPLE)
            ],
        )
        rows(
            Team,
            [
                {"id": t + 1, "key": f"team-{t}", "name": f"Team {t}", "lead_id": t + 1}
                for t in range(TEAMS)
            ],
        )
        rows(
            TeamMember,
            [{"team_id": p % TEAMS + 1, "person_id": p + 1} for p in range(TEAMS, PEOPLE)],
        )
        rows(
            Objective,
            [
                {"id": o + 1, "key": f"objective-{o}", "title": f"Objective {o}", "owner_id": 1}
                for o in range(OBJECTIVES)
            ],
        )
        rows(
            Kpi,
            [
                {
                    "id": k + 1,
                    "key": f"kpi-{k}",
                    "objective_id": k % OBJECTIVES + 1,
                    "name": f"Measure {k}",
                    "unit": "%",
                    "baseline": 10.0,
                    "target": 60.0,
                    "direction": "up",
                    "start": start,
                    "due": due,
                    "amber_tolerance": 10.0,
                    "red_tolerance": 25.0,
                    "archived": False,
                }
                for k in range(KPIS)
            ],
        )
        rows(
            KpiReading,
            [
                {
                    "kpi_id": k + 1,
                    "value": 10 + r * 0.3 + rng.uniform(-3, 3),
                    "as_of": start + timedelta(days=3 * r),
                    "source": "import",
                }
                for k in range(KPIS)
                for r in range(READINGS_PER_KPI)
            ],
        )
        rows(
            Initiative,
            [
                {
                    "id": i + 1,
                    "key": f"initiative-{i}",
                    "title": f"Initiative {i}",
                    "objective_id": i % OBJECTIVES + 1,
                    "owner_id": i % PEOPLE + 1,
                    "team_id": i % TEAMS + 1,
                    "status": "active",
                    "active_since": datetime(2026, 1, 1, tzinfo=UTC),
                    "archived": False,
                }
                for i in range(INITIATIVES)
            ],
        )
        rows(
            InitiativeKpi,
            [
                {"initiative_id": i + 1, "kpi_id": (i + j * 37) % KPIS + 1}
                for i in range(INITIATIVES)
                for j in range(2)
            ],
        )
        rows(
            Milestone,
            [
                {
                    "id": i * MILESTONES_PER_INITIATIVE + m + 1,
                    "key": f"milestone-{i}-{m}",
                    "initiative_id": i + 1,
                    "title": f"Milestone {m} of initiative {i}",
                    "due": date(2026, 9, 1) + timedelta(days=60 * m + i % 30),
                    "original_due": date(2026, 9, 1) + timedelta(days=60 * m + i % 30),
                    "status": "done" if m == 0 else "open",
                    "archived": False,
                }
                for i in range(INITIATIVES)
                for m in range(MILESTONES_PER_INITIATIVE)
            ],
        )
        rows(
            Dependency,
            [
                {
                    "key": f"dependency-{i}",
                    "initiative_id": i + 1,
                    "milestone_id": i * MILESTONES_PER_INITIATIVE + 3,
                    "provider_team_id": (i + 1) % TEAMS + 1,
                    "need": f"Deliverable for initiative {i}",
                    "needed_by": date(2027, 1, 15),
                    "state": "requested",
                    "requested_at": now,
                    "archived": False,
                }
                for i in range(INITIATIVES)
            ],
        )
        rows(
            PulseRequest,
            [
                {
                    "id": i + 1,
                    "initiative_id": i + 1,
                    "owner_id": i % PEOPLE + 1,
                    "period": now.isoformat(),
                    "due_at": now,
                    "state": "answered",
                    "sent_at": now,
                    "answered_at": now,
                }
                for i in range(INITIATIVES)
            ],
        )
        rows(
            PulseAnswer,
            [
                {
                    "pulse_request_id": i + 1,
                    "status": rng.choice(["on_track", "at_risk", "off_track"]),
                    "confidence": rng.randint(1, 5),
                    "answered_at": now,
                    "dependency_late": False,
                }
                for i in range(INITIATIVES)
            ],
        )
    engine.dispose()


# --- the servers (subprocesses) ---------------------------------------------------------------


class Timing:
    """ASGI wrapper recording each POST's server-side duration; GET /__bench reports them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.durations: list[float] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/__bench":
            await self._report(scope, send)
            return
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.durations.append(time.perf_counter() - started)

    async def _report(self, scope: Scope, send: Send) -> None:
        if scope["method"] == "DELETE":
            self.durations.clear()
        status = {
            line.split(":")[0]: line.split(":")[1].strip()
            for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith(("VmRSS", "VmHWM"))
        }
        body = json.dumps({"durations": self.durations, "memory": status}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def serve(kind: str, database_url: str, port: int) -> None:
    import logging
    from concurrent.futures import ThreadPoolExecutor

    import uvicorn
    from slack_bolt import Ack, App

    from bot.entry.app import create_app
    from bot.entry.server import build_asgi_app, build_services
    from bot.settings import load_settings
    from standin import StandIn, Workspace
    from standin.workspace import User
    from templates.ids import PulseIds

    logging.basicConfig(level=logging.WARNING)
    workspace = Workspace.default()
    for p in range(PEOPLE):  # the plan's people, so that a click's Home refresh reaches them
        workspace.users[f"U{p:07d}"] = User(
            id=f"U{p:07d}", name=f"person{p}", tz="America/New_York"
        )
    standin = StandIn(workspace).start()  # Bolt's lazy auth.test lands here too
    settings = load_settings(
        database_url=database_url,
        slack_bot_token=standin.workspace.bot_token,
        slack_signing_secret=SECRET,
        slack_app_token=None,
        slack_api_url=standin.api_url,
    )
    services = build_services(settings)
    # "-inline" variants run listeners inside the request (process_before_response=True), as
    # FaaS deployments do: no ack polling, so they show what the work itself costs.
    inline = kind.endswith("-inline")
    if kind == "real":
        bolt = create_app(services, listener_executor=ThreadPoolExecutor(max_workers=16))
    else:
        bolt = App(
            client=services.slack.client,
            signing_secret=SECRET,
            token_verification_enabled=False,
            process_before_response=inline,
            listener_executor=ThreadPoolExecutor(max_workers=16),
        )
        if kind == "real-inline":
            from handlers import register_all

            register_all(bolt, services)
        else:

            def only_ack(ack: Ack) -> None:
                ack()

            bolt.command(settings.kpi_command)(only_ack)
            bolt.command(settings.plan_command)(only_ack)
            bolt.action(PulseIds.ON_TRACK)(only_ack)
    app = Timing(build_asgi_app(services, bolt_app=bolt))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# --- the client -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Ask:
    """One request of the run: what it measures (`label`), and what Slack would send."""

    label: str  # "plan", "kpi", "scorecard" or "click"
    command: str = ""
    text: str = ""
    user: str = "U0000000"
    pulse_id: int = 0


def signed(body: str) -> tuple[bytes, dict[str, str]]:
    import hashlib
    import hmac

    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return body.encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
    }


def signed_request(ask: Ask) -> tuple[bytes, dict[str, str]]:
    if ask.label == "click":  # "On track" pressed on App Home, as Slack posts it
        payload = {
            "type": "block_actions",
            "user": {"id": ask.user, "team_id": "T0PLANPULSE"},
            "team": {"id": "T0PLANPULSE", "domain": "bench"},
            "api_app_id": "A0PLANPULSE",
            "trigger_id": "1.2.3",
            "container": {"type": "view", "view_id": "V0"},
            "view": {"id": "V0", "type": "home", "blocks": []},
            "actions": [
                {
                    "type": "button",
                    "action_id": "pulse_on_track",
                    "block_id": f"pulse_actions:{ask.pulse_id}",
                    "value": str(ask.pulse_id),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return signed(urlencode({"payload": json.dumps(payload)}))
    return signed(
        urlencode(
            {
                "token": "x",
                "team_id": "T0PLANPULSE",
                "channel_id": "CGENERAL",
                "user_id": ask.user,
                "command": ask.command,
                "text": ask.text,
                "response_url": "http://127.0.0.1:9/never-used",
                "trigger_id": "1.2.3",
            }
        )
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(round(q / 100 * (len(ordered) - 1)), len(ordered) - 1)]


def run_against(kind: str, database_url: str, requests: list[Ask]) -> dict[str, Any]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_commands", "--serve", kind, database_url, str(port)]
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the {kind} server did not start")
                time.sleep(0.1)
            round_trips = []
            late = 0
            for n, ask in enumerate(requests):
                body, headers = signed_request(ask)
                if n == WARMUP:
                    client.delete("/__bench")
                started = time.perf_counter()
                response = client.post("/slack/events", content=body, headers=headers)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{kind}: {ask} answered {response.status_code}")
                if kind.startswith("real") and ask.label != "click":
                    if not response.text:
                        late += 1  # acked empty by the deadline; the answer went to response_url
                    elif "blocks" not in response.text:
                        raise RuntimeError(f"{kind}: {ask} answered without blocks")
                if n >= WARMUP:
                    round_trips.append(elapsed)
            report = client.get("/__bench").json()
    finally:
        process.terminate()
        process.wait(timeout=30)
    server = [d * 1000 for d in report["durations"]]
    client_ms = [d * 1000 for d in round_trips]
    labels = [ask.label for ask in requests[WARMUP:]]
    by_label: dict[str, list[float]] = {}
    for label, duration in zip(labels, server, strict=True):
        by_label.setdefault(label, []).append(duration)
    return {
        "late": late,
        "by_label": {
            label: {"p50": percentile(values, 50), "p99": percentile(values, 99)}
            for label, values in by_label.items()
        },
        "requests": len(server),
        "server_p50": percentile(server, 50),
        "server_p99": percentile(server, 99),
        "server_mean": statistics.fmean(server),
        "client_p50": percentile(client_ms, 50),
        "client_p99": percentile(client_ms, 99),
        "rss": report["memory"].get("VmRSS", "?"),
        "hwm": report["memory"].get("VmHWM", "?"),
    }


def core_latency(database_url: str, requests: list[Ask]) -> dict[str, float]:
    """The same questions asked of the core directly (queries + rules + templates, no HTTP)."""
    from bot.reports import kpi_answer, plan_answer
    from storage.db import make_engine, session_scope
    from templates.answers import Asked, kpi_message, plan_message

    engine = make_engine(database_url)
    durations = []
    for n, ask in enumerate(requests):
        if ask.label not in ("plan", "kpi"):
            continue
        name = ask.command.lstrip("/")
        asked = Asked(command=name, text=ask.text, kpi_command="/kpi", plan_command="/plan")
        started = time.perf_counter()
        with session_scope(engine) as session:
            now = datetime.now(UTC)
            if name == "kpi":
                kpi_message(kpi_answer(session, ask.text, now), asked)
            else:
                plan_message(plan_answer(session, ask.text, ask.user, now), asked)
        if n >= WARMUP:
            durations.append((time.perf_counter() - started) * 1000)
    engine.dispose()
    return {"p50": percentile(durations, 50), "p99": percentile(durations, 99)}


def request_mix(count: int) -> list[Ask]:
    """/plan <key>, /kpi <key> and "On track" clicks in turn; every 20th request a scorecard."""
    rng = random.Random(11)
    asks = []
    for n in range(count):
        i = rng.randrange(INITIATIVES)
        user = f"U{n % PEOPLE:07d}"
        if n % 20 == 19:
            asks.append(Ask("scorecard", command="/kpi", user=user))
        elif n % 3 == 0:
            asks.append(Ask("plan", command="/plan", text=f"initiative-{i}", user=user))
        elif n % 3 == 1:
            asks.append(Ask("kpi", command="/kpi", text=f"kpi-{rng.randrange(KPIS)}", user=user))
        else:  # the owner of initiative i answers its pulse (request i + 1)
            asks.append(Ask("click", user=f"U{i % PEOPLE:07d}", pulse_id=i + 1))
    return asks


def run(measured: int = 1000) -> list[Figure]:
    """Build the plan, ask each server the same requests, and return the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        started = time.perf_counter()
        build_plan(database_url)
        built = time.perf_counter() - started
        requests = request_mix(measured + WARMUP)
        core = core_latency(database_url, requests)
        bare = run_against("bare", database_url, requests)
        real = run_against("real", database_url, requests)
        inline = {
            kind: run_against(kind, database_url, requests)
            for kind in ("bare-inline", "real-inline")
        }
        size_mb = os.path.getsize(Path(tmp) / "bench.db") / 1e6
    print(
        f"python {platform.python_version()} on {platform.machine()}, SQLite file {size_mb:.0f} MB; "
        f"plan built in {built:.1f} s: {INITIATIVES} initiatives, {KPIS} KPIs, "
        f"{KPIS * READINGS_PER_KPI} readings"
    )
    print(
        f"{'':12} {'requests':>8} {'server p50':>11} {'server p99':>11} {'client p50':>11} "
        f"{'client p99':>11} {'RSS':>10} {'peak RSS':>10}"
    )
    for name, result in (("bare", bare), ("real", real), *inline.items()):
        print(
            f"{name:12} {result['requests']:>8} {result['server_p50']:>9.2f}ms "
            f"{result['server_p99']:>9.2f}ms {result['client_p50']:>9.2f}ms "
            f"{result['client_p99']:>9.2f}ms {result['rss']:>10} {result['hwm']:>10}"
        )
        if result["late"]:
            print(f"  {result['late']} answers were not ready by the ack deadline (acked empty)")
        for label, figures in sorted(result["by_label"].items()):
            print(f"  {label:10} p50 {figures['p50']:8.2f}ms  p99 {figures['p99']:8.2f}ms")
    return figures_of(bare, real, inline, core)


def figures_of(
    bare: dict[str, Any],
    real: dict[str, Any],
    inline: dict[str, dict[str, Any]],
    core: dict[str, float],
) -> list[Figure]:
    """The run as table rows: each goal of issue 12 §7 against the bare ack beside it."""
    name = "commands"
    real_inline, bare_inline = inline["real-inline"]["by_label"], inline["bare-inline"]["by_label"]
    figures = []
    for label, what in (("plan", "`/plan <key>`"), ("click", "pulse button click")):
        ours, floor = real_inline[label]["p50"], bare_inline[label]["p50"]
        figures.append(
            Figure(
                name,
                f"{what}, listener inline, server p50 at {INITIATIVES:,} initiatives",
                f"{ours:.2f} ms ({ours / floor:.1f}x)",
                f"≤ {GOAL_INLINE_RATIO:g}x bare",
                f"bare Bolt ack inline {floor:.2f} ms",
                ours / floor <= GOAL_INLINE_RATIO,
            )
        )
    scorecard = real_inline["scorecard"]["p50"]
    figures.append(
        Figure(
            name,
            f"`/kpi` scorecard of {KPIS:,} KPIs, listener inline, server p50",
            f"{scorecard:.1f} ms",
            f"≤ {GOAL_SCORECARD_MS:g} ms",
            f"bare Bolt ack inline {bare_inline['scorecard']['p50']:.2f} ms",
            scorecard <= GOAL_SCORECARD_MS,
        )
    )
    ratio = real["server_p50"] / bare["server_p50"]
    figures += [
        Figure(
            name,
            "server p50 of the mix as `serve` runs it (ack polled by Bolt)",
            f"{real['server_p50']:.2f} ms ({ratio:.2f}x)",
            f"≤ {GOAL_P50_RATIO:g}x bare",
            f"bare Bolt app {bare['server_p50']:.2f} ms",
            ratio <= GOAL_P50_RATIO,
        ),
        Figure(
            name,
            "server p99 of the mix as `serve` runs it",
            f"{real['server_p99']:.1f} ms",
            f"< {GOAL_P99_MS:g} ms",
            f"bare Bolt app {bare['server_p99']:.1f} ms",
            real["server_p99"] < GOAL_P99_MS,
        ),
        Figure(
            name,
            "core alone in-process, /plan and /kpi <key> p50 (p99)",
            f"{core['p50']:.2f} ms ({core['p99']:.2f} ms)",
        ),
    ]
    rss_mb = int(real["rss"].split()[0]) / 1024
    figures.append(
        Figure(
            name,
            "server RSS with the plan loaded and queried",
            f"{rss_mb:.0f} MB",
            f"< {GOAL_RSS_MB:g} MB",
            f"bare Bolt app {int(bare['rss'].split()[0]) / 1024:.0f} MB",
            rss_mb < GOAL_RSS_MB,
        )
    )
    return figures


def main(argv: list[str] | None = None, report: list[Figure] | None = None) -> int:
    """Run the benchmark and print it; `report` (bench/run_all.py) also receives its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="measured requests per server")
    parser.add_argument("--serve", nargs=3, metavar=("KIND", "DATABASE_URL", "PORT"))
    args = parser.parse_args(argv)
    if args.serve:
        kind, database_url, port = args.serve
        serve(kind, database_url, int(port))
        return 0
    figures = run(args.requests)
    print_figures(figures)
    if report is not None:
        report += figures
    return 0


if __name__ == "__main__":
    sys.exit(main())
