"""Detection against its floor: one no-op pass over a big plan, on SQLite and PostgreSQL.

For each database the plan of bench/big_plan.py is built once (100,000 milestones, 50,000
dependencies, 1,000,000 readings, 10,000 initiatives by default) and measured in one run:

1. the floor: one plain SQL query counting the overdue rows a pass must at least look at
   (`big_plan.overdue_floor`), best of `--repeat`;
2. the detection pass (`detect(services, now)`, by default `bot.alerts.run_detection`), best of
   `--repeat`, after `prepare(services, now)` has run once (by default: the pass itself, repeated
   until it makes no Web API call, so the alerts the plan calls for exist and are posted). The
   timed passes must then raise no new alert and call Slack for nothing; both are counted.
   Goal: pass ≤ 3x floor;
3. the pass's peak memory (tracemalloc, a pass of its own), and the same on a plan with a tenth of
   the rows but the same overdue rows, people and KPIs: memory must not grow with the rows scanned
   (goal: ≤ 1.5x the small plan's peak);
4. a whole no-op `run_tick` (after ticks until one makes no Web API call), best of `--repeat`,
   against the floor. No goal: the figure is recorded.

Slack is the stand-in, in this process, with the plan's people and channels. When the pass does
not exist (a branch without bot/alerts), the floor and the tick are measured alone.

Run: .venv/bin/python -m bench.bench_detection [--databases sqlite,postgresql] [--repeat 5]
PostgreSQL: a database `--postgres-database` (default planpulse_bench) is created on the server
of `--postgres-admin-url` for the run and dropped after it; the suite's `test` database is never
touched.

From other code: `run_benchmark(backends, detect=my_pass, prepare=my_setup)`.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sqlite3
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from bench.big_plan import (
    NOW,
    TODAY,
    BuiltPlan,
    FloorCount,
    PlanSize,
    bench_workspace,
    build_big_plan,
    overdue_floor,
    overdue_ids,
)
from bench.figures import Figure
from bot.services import Services
from bot.settings import load_settings
from bot.slack.gateway import SlackGateway
from standin import StandIn
from storage.db import make_engine, upgrade
from storage.models import Alert

Detect = Callable[[Services, datetime], object]
Prepare = Callable[[Services, datetime], None]
T = TypeVar("T")

GOAL_RATIO = 3.0
GOAL_MEMORY_GROWTH = 1.5
MEMORY_SCALE = 0.1
SETTLE_LIMIT = 8  # passes or ticks tried before the plan is taken as settled anyway
DEFAULT_POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_POSTGRES_DATABASE = "planpulse_bench"
BACKENDS = ("sqlite", "postgresql")
DEFAULT_SIZE = PlanSize()
NOT_AVAILABLE = "detection pass not available on this branch"


@dataclass
class Measured:
    """One database's figures; the pass's are None when there is no pass to time."""

    backend: str
    server: str
    built: BuiltPlan
    floor: FloorCount
    floor_s: float
    fetch_s: float  # the same rows' ids fetched: context for the ratio, not the goal's floor
    pass_s: float | None = None
    pass_calls: int | None = None
    new_alerts: int | None = None
    settle_passes: int | None = None
    pass_peak_mb: float | None = None
    small_peak_mb: float | None = None
    small_rows: int | None = None
    tick_s: float | None = None
    tick_calls: int | None = None
    settle_ticks: int | None = None
    tick_steps: dict[str, float] | None = None  # each step of the no-op tick alone, best of N

    @property
    def ratio(self) -> float | None:
        return None if self.pass_s is None else self.pass_s / self.floor_s

    @property
    def tick_ratio(self) -> float | None:
        return None if self.tick_s is None else self.tick_s / self.floor_s

    @property
    def memory_growth(self) -> float | None:
        if self.pass_peak_mb is None or not self.small_peak_mb:
            return None
        return self.pass_peak_mb / self.small_peak_mb

    def goals_met(self) -> bool:
        checks = [
            self.ratio is None or self.ratio <= GOAL_RATIO,
            self.memory_growth is None or self.memory_growth <= GOAL_MEMORY_GROWTH,
            not self.new_alerts,
            not self.pass_calls,
            not self.tick_calls,
        ]
        return all(checks)


# --- databases ----------------------------------------------------------------------------------


@contextmanager
def fresh_database(backend: str, folder: Path, *, admin_url: str, name: str) -> Iterator[str]:
    """A new, empty database for one build: a SQLite file, or a PostgreSQL database dropped after."""
    if backend == "sqlite":
        path = folder / f"{name}.db"
        for leftover in folder.glob(f"{name}.db*"):
            leftover.unlink()
        yield f"sqlite:///{path}"
        return
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_reachable(admin_url: str) -> str | None:
    """Why PostgreSQL cannot be used, or None when it can."""
    engine = make_engine(admin_url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not here"; say which
        return f"{type(exc).__name__}: {exc}".splitlines()[0]
    finally:
        engine.dispose()


def server_version(engine: Engine) -> str:
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            return str(connection.execute(text("SHOW server_version")).scalar_one()).split()[0]
    return sqlite3.sqlite_version


def services_for(engine: Engine, database_url: str, standin: StandIn) -> Services:
    settings = load_settings(
        database_url=database_url,
        slack_bot_token=standin.workspace.bot_token,
        slack_api_url=standin.api_url,
        slack_app_token=None,
    )
    return Services(settings=settings, engine=engine, slack=SlackGateway.from_settings(settings))


# --- measuring ----------------------------------------------------------------------------------


def best_of(repeat: int, run: Callable[[], T]) -> tuple[float, T]:
    """The fastest of `repeat` runs (a shared machine only ever adds time), and the last result."""
    best, result = float("inf"), None
    for _ in range(max(1, repeat)):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result  # type: ignore[return-value]


def settle(
    services: Services,
    standin: StandIn,
    now: datetime,
    step: Callable[[Services, datetime], object],
) -> int:
    """Run `step` until a run makes no Web API call (at most SETTLE_LIMIT runs); how many ran."""
    for attempt in range(1, SETTLE_LIMIT + 1):
        standin.reset_calls()
        step(services, now)
        if not standin.calls():
            return attempt
    return SETTLE_LIMIT


def alert_count(engine: Engine) -> int:
    if not inspect(engine).has_table(Alert.__tablename__):
        return 0
    with Session(engine) as session:
        return int(session.execute(select(func.count()).select_from(Alert)).scalar_one())


def floor_time(engine: Engine, repeat: int) -> tuple[float, FloorCount, float]:
    with Session(engine) as session:
        overdue_floor(session, TODAY, NOW)  # the first run reads the pages in; the best counts
        floor_s, floor = best_of(repeat, lambda: overdue_floor(session, TODAY, NOW))
        fetch_s, ids = best_of(repeat, lambda: overdue_ids(session, TODAY, NOW))
    assert len(ids) == floor.total, (len(ids), floor)
    return floor_s, floor, fetch_s


def peak_memory_mb(run: Callable[[], object]) -> float:
    """Python's own allocations during `run` at their highest (tracemalloc), in MB."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        run()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def _default_prepare(detect: Detect, standin: StandIn) -> Prepare:
    def prepare(services: Services, now: datetime) -> None:
        settle(services, standin, now, detect)

    return prepare


def measure_database(
    backend: str,
    folder: Path,
    standin: StandIn,
    *,
    size: PlanSize,
    detect: Detect | None,
    prepare: Prepare | None,
    repeat: int,
    tick: bool,
    admin_url: str,
    database: str,
) -> Measured:
    with fresh_database(backend, folder, admin_url=admin_url, name=database) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            built = build_big_plan(engine, size)
            print(f"  {backend}: plan built in {built.seconds:.1f} s", flush=True)
            floor_s, floor, fetch_s = floor_time(engine, repeat)
            assert floor.total == built.overdue, (floor, built)  # the floor counts what was built
            measured = Measured(backend, server_version(engine), built, floor, floor_s, fetch_s)
            services = services_for(engine, url, standin)
            if detect is not None:
                _measure_pass(measured, services, standin, detect, prepare, repeat)
            if tick:
                _measure_tick(measured, services, standin, repeat)
        finally:
            engine.dispose()
    if detect is not None:
        small = size.scaled(MEMORY_SCALE)
        with fresh_database(backend, folder, admin_url=admin_url, name=f"{database}_small") as url:
            engine = make_engine(url)
            try:
                upgrade(engine)
                build_big_plan(engine, small)
                services = services_for(engine, url, standin)
                (prepare or _default_prepare(detect, standin))(services, NOW)
                measured.small_peak_mb = peak_memory_mb(lambda: detect(services, NOW))
                measured.small_rows = small.rows()
            finally:
                engine.dispose()
    return measured


def _measure_pass(
    measured: Measured,
    services: Services,
    standin: StandIn,
    detect: Detect,
    prepare: Prepare | None,
    repeat: int,
) -> None:
    started = time.perf_counter()
    if prepare is None:
        measured.settle_passes = settle(services, standin, NOW, detect)
    else:
        prepare(services, NOW)
    print(f"  {measured.backend}: prepared in {time.perf_counter() - started:.1f} s", flush=True)
    alerts_before = alert_count(services.engine)
    standin.reset_calls()
    measured.pass_s, _ = best_of(repeat, lambda: detect(services, NOW))
    measured.pass_calls = len(standin.calls())
    measured.new_alerts = alert_count(services.engine) - alerts_before
    measured.pass_peak_mb = peak_memory_mb(lambda: detect(services, NOW))


def _measure_tick(measured: Measured, services: Services, standin: StandIn, repeat: int) -> None:
    from scheduler.tick import STEPS, run_tick

    measured.settle_ticks = settle(services, standin, NOW, run_tick)
    standin.reset_calls()
    measured.tick_s, report = best_of(repeat, lambda: run_tick(services, NOW))
    assert report.ok, report.failed
    measured.tick_steps = {
        name: best_of(repeat, lambda step=step: step(services, NOW))[0]
        for name, step in STEPS.items()
    }
    measured.tick_calls = len(standin.calls())


def run_benchmark(
    backends: tuple[str, ...] = BACKENDS,
    *,
    detect: Detect | None,
    prepare: Prepare | None = None,
    size: PlanSize = DEFAULT_SIZE,
    repeat: int = 5,
    tick: bool = True,
    admin_url: str = DEFAULT_POSTGRES_ADMIN,
    database: str = DEFAULT_POSTGRES_DATABASE,
) -> list[Measured]:
    """Every backend in turn, one stand-in for all; PostgreSQL is skipped (saying why) if absent."""
    results = []
    standin = StandIn(bench_workspace(size)).start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for backend in backends:
                if backend == "postgresql" and (why := postgres_reachable(admin_url)):
                    print(f"  postgresql skipped: {admin_url} not reachable ({why})")
                    continue
                results.append(
                    measure_database(
                        backend,
                        Path(tmp),
                        standin,
                        size=size,
                        detect=detect,
                        prepare=prepare,
                        repeat=repeat,
                        tick=tick,
                        admin_url=admin_url,
                        database=database,
                    )
                )
    finally:
        standin.stop()
    return results


# --- the report ---------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    return "pending" if seconds is None else f"{1000 * seconds:.1f} ms"


def _times(value: float | None) -> str:
    return "pending" if value is None else f"{value:.2f}x"


def print_report(results: list[Measured], size: PlanSize, repeat: int, detect_name: str) -> None:
    if not results:
        print("no database measured")
        return
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    heads = [f"{names[r.backend]} {r.server}" for r in results]
    print(
        f"\n## Detection against its floor ({size.initiatives:,} initiatives, "
        f"{size.milestones:,} milestones, {size.dependencies:,} dependencies, {size.kpis:,} KPIs, "
        f"{size.readings:,} readings; pass: {detect_name}; best of {repeat})\n"
    )
    print(f"Python {platform.python_version()}, {platform.machine()}\n")
    print(f"| figure | {' | '.join(heads)} | goal | met |")
    print(f"|---|{'---|' * len(results)}---|---|")

    def row(
        figure: str, values: list[str], goal: str = "", met: list[bool | None] | None = None
    ) -> None:
        verdicts = [m for m in (met or []) if m is not None]
        verdict = "" if not verdicts else ("yes" if all(verdicts) else "NO")
        print(f"| {figure} | {' | '.join(values)} | {goal} | {verdict} |")

    row(
        "plan built",
        [f"{r.built.seconds:.1f} s ({sum(r.built.rows.values()):,} rows)" for r in results],
    )
    row(
        "overdue rows (missed + late + unacknowledged)",
        [
            f"{r.floor.total:,} ({r.floor.missed:,} + {r.floor.late:,} + {r.floor.unacknowledged:,})"
            for r in results
        ],
    )
    row("floor: one counting query", [_ms(r.floor_s) for r in results])
    row("(for context: the same rows' ids fetched)", [_ms(r.fetch_s) for r in results])
    row("detection pass, no new alerts", [_ms(r.pass_s) for r in results])
    row(
        "pass / floor",
        [_times(r.ratio) for r in results],
        f"≤ {GOAL_RATIO:g}x",
        [None if r.ratio is None else r.ratio <= GOAL_RATIO for r in results],
    )
    row(
        "timed passes: new alerts, Web API calls",
        ["pending" if r.new_alerts is None else f"{r.new_alerts}, {r.pass_calls}" for r in results],
        "0, 0",
        [
            None if r.new_alerts is None else r.new_alerts == 0 and r.pass_calls == 0
            for r in results
        ],
    )
    row(
        f"pass peak memory: full plan / {MEMORY_SCALE:g} of the rows",
        [
            "pending"
            if r.pass_peak_mb is None
            else f"{r.pass_peak_mb:.1f} MB / {r.small_peak_mb or 0:.1f} MB = {_times(r.memory_growth)}"
            for r in results
        ],
        f"≤ {GOAL_MEMORY_GROWTH:g}x",
        [
            None if r.memory_growth is None else r.memory_growth <= GOAL_MEMORY_GROWTH
            for r in results
        ],
    )
    row("no-op run_tick", [_ms(r.tick_s) for r in results])
    row("run_tick / floor", [_times(r.tick_ratio) for r in results])
    row(
        "timed ticks: Web API calls",
        ["not run" if r.tick_calls is None else str(r.tick_calls) for r in results],
        "0",
        [None if r.tick_calls is None else r.tick_calls == 0 for r in results],
    )
    for r in results:
        if r.tick_steps:
            steps = ", ".join(f"{name} {_ms(seconds)}" for name, seconds in r.tick_steps.items())
            print(
                f"\n{names[r.backend]}: tick steps alone: {steps}; "
                f"settled after {r.settle_ticks} tick(s)"
                + (f", the pass after {r.settle_passes}" if r.settle_passes else "")
            )


def load_detection() -> Detect | None:
    """The lead's pass, imported only now: this benchmark must run on branches without it."""
    try:
        from bot.alerts import run_detection
    except ImportError as exc:
        print(f"{NOT_AVAILABLE} ({exc}): timing the floor and the no-op tick only")
        return None
    detect: Detect = run_detection
    return detect


def figures_of(results: list[Measured], size: PlanSize) -> list[Figure]:
    """The goals of the run as table rows, one set per database."""
    figures = []
    for r in results:
        where = f"{r.backend}, {size.initiatives:,} initiatives"
        if r.ratio is not None:
            figures.append(
                Figure(
                    "detection",
                    f"detection pass with nothing new ({where})",
                    f"{_ms(r.pass_s)} ({_times(r.ratio)})",
                    f"≤ {GOAL_RATIO:g}x floor",
                    f"one query counting the overdue rows, {_ms(r.floor_s)}",
                    r.ratio <= GOAL_RATIO,
                )
            )
        if r.memory_growth is not None:
            figures.append(
                Figure(
                    "detection",
                    f"pass peak memory, full plan against {MEMORY_SCALE:g} of it ({where})",
                    _times(r.memory_growth),
                    f"≤ {GOAL_MEMORY_GROWTH:g}x",
                    f"{r.small_peak_mb or 0:.1f} MB",
                    r.memory_growth <= GOAL_MEMORY_GROWTH,
                )
            )
        if r.tick_ratio is not None:
            figures.append(
                Figure(
                    "detection",
                    f"no-op `run_tick` ({where})",
                    f"{_ms(r.tick_s)} ({_times(r.tick_ratio)})",
                    "",
                    f"the same floor, {_ms(r.floor_s)}",
                )
            )
    return figures


def main(argv: list[str] | None = None, report: list[Figure] | None = None) -> int:
    """Run the benchmark and print it; `report` (bench/run_all.py) also receives its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default=",".join(BACKENDS), help="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each; the best counts")
    parser.add_argument("--no-tick", action="store_true", help="skip the no-op run_tick")
    parser.add_argument("--postgres-admin-url", default=DEFAULT_POSTGRES_ADMIN)
    parser.add_argument("--postgres-database", default=DEFAULT_POSTGRES_DATABASE)
    defaults = PlanSize()
    for name in ("initiatives", "milestones", "dependencies", "kpis", "readings"):
        parser.add_argument(f"--{name}", type=int, default=getattr(defaults, name))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    backends = tuple(b.strip() for b in args.databases.split(",") if b.strip())
    unknown = set(backends) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown databases: {', '.join(sorted(unknown))}")
    if args.postgres_database == "test":
        parser.error("the test database belongs to the test suite; choose another name")
    size = PlanSize(
        initiatives=args.initiatives,
        milestones=args.milestones,
        dependencies=args.dependencies,
        kpis=args.kpis,
        readings=args.readings,
    )
    detect = load_detection()
    results = run_benchmark(
        backends,
        detect=detect,
        size=size,
        repeat=args.repeat,
        tick=not args.no_tick,
        admin_url=args.postgres_admin_url,
        database=args.postgres_database,
    )
    name = "bot.alerts.run_detection" if detect is not None else NOT_AVAILABLE
    print_report(results, size, args.repeat, name)
    if report is not None:
        report += figures_of(results, size)
    return 0 if all(r.goals_met() for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
