"""`planpulse demo`: the example plan in a fresh SQLite file, its health, then a simulated quarter.

The quarter (bot/entry/quarter/) runs the real server against the Slack stand-in, with scripted people
(the scenario file next to the example plan); everything stays on loopback, it prints the
timeline week by week and writes an HTML report.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine, make_url

from bot.clock import utcnow
from bot.errors import UserError
from bot.health import dependency_late, due_date_ended, milestone_missed, plan_today
from bot.planfile.diff import ChangeSet
from bot.planfile.example import EXAMPLE_TIMEZONE, example_workspace, render_example_plan
from bot.planfile.importer import import_plan, stored_state
from bot.planfile.validate import validate_document
from bot.planfile.yaml_reader import read_yaml
from bot.problems import ProblemCode, problem
from storage.db import make_engine, session_scope, upgrade
from storage.models import DependencyState, MilestoneStatus
from templates import render_text

DUE_SOON_DAYS = 14


def demo_command(args: argparse.Namespace) -> int:
    from bot.entry.quarter.scenario import DEFAULT_SCENARIO, load_scenario

    scenario_path = Path(args.scenario) if getattr(args, "scenario", None) else DEFAULT_SCENARIO
    scenario = load_scenario(scenario_path)  # a bad file stops the demo before anything runs
    now = utcnow()
    today = plan_today(now, EXAMPLE_TIMEZONE)
    engine = fresh_sqlite(args.database)
    try:
        with _log_only_trouble(unless=getattr(args, "verbose", False)):
            print_imported(import_example(engine, today, now=now), args.database)
            print_summary(engine, now)
            sys.stdout.flush()  # shown while the quarter runs
            print_quarter(engine, args, scenario, scenario_path, now)
    finally:
        engine.dispose()
    return 0


@contextmanager
def _log_only_trouble(*, unless: bool) -> Iterator[None]:
    """The account on stdout is the demo's output; meanwhile the log speaks only of trouble."""
    root = logging.getLogger()
    level = root.level
    if not unless:
        root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)


class DemoProblem(ProblemCode):
    """What can stop `planpulse demo` before it starts."""

    NEEDS_SQLITE_FILE = "demo.needs_sqlite_file"  # url


def fresh_sqlite(database_url: str) -> Engine:
    """The demo owns its database: the file is deleted and the schema created from scratch."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise UserError(problem(DemoProblem.NEEDS_SQLITE_FILE, url=database_url))
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(url.database + suffix).unlink(missing_ok=True)
    engine = make_engine(database_url)
    upgrade(engine)
    return engine


def import_example(engine: Engine, today: date, *, now: datetime) -> ChangeSet:
    """The example plan, dated around `today`, imported exactly as `planpulse import` would."""
    plan = validate_document(*read_yaml("example plan", render_example_plan(today)))
    return import_plan(engine, plan, actor="demo", now=now)


@dataclass
class KpiLine:
    key: str
    name: str
    unit: str
    latest: float | None
    as_of: date | None
    baseline: float
    target: float
    due: date


@dataclass
class ObjectiveLine:
    key: str
    title: str
    owner: str
    kpis: list[KpiLine] = field(default_factory=list)


def _name(ref: str | None, names: dict[str, str]) -> str:
    return names.get(ref, ref) if ref else "nobody"


@dataclass
class _Planned:
    """A milestone of the stored plan, as the health rules read it (archived ones are left out)."""

    due: date
    status: str
    archived: bool = False


@dataclass
class _Needed:
    """A dependency of the stored plan, as the health rules read it."""

    needed_by: date
    state: str
    archived: bool = False


def summary_context(engine: Engine, now: datetime) -> dict[str, Any]:
    """What the summary shows, from the database (not from the file), as plain values."""
    with session_scope(engine) as session:
        state, _people = stored_state(session)
    names = {user["email"]: user["real_name"] for user in example_workspace()["users"]}
    live = {
        kind: {k: v for k, v in items.items() if k not in state.archived[kind]}
        for kind, items in state.items.items()
    }
    latest: dict[str, tuple[date, float]] = {}
    for kpi, read_on, reading_value in state.readings:  # ordered by date: the last one wins
        latest[kpi] = (read_on, reading_value)
    objectives = {
        key: ObjectiveLine(key, fields["title"], _name(fields["owner"], names))
        for key, fields in live["objective"].items()
    }
    for key, fields in live["kpi"].items():
        as_of, value = latest.get(key, (None, None))
        objectives[fields["objective"]].kpis.append(
            KpiLine(
                key,
                fields["name"],
                fields["unit"],
                value,
                as_of,
                fields["baseline"],
                fields["target"],
                fields["due"],
            )
        )
    milestones = live["milestone"]
    teams = live["team"]
    initiatives = []
    for key, fields in live["initiative"].items():
        own = [m for m in milestones.values() if m["initiative"] == key]
        initiatives.append(
            {
                "key": key,
                "title": fields["title"],
                "team": teams[fields["team"]]["name"],
                "owner": _name(fields["owner"], names),
                "done": sum(1 for m in own if m["status"] == "done"),
                "total": len(own),
            }
        )
    # The same rules as /plan and detection (bot/health.py), on the stored plan.
    tz = state.settings["timezone"]
    today = plan_today(now, tz)
    by_due = sorted(milestones.items(), key=lambda item: item[1]["due"])
    missed = [
        {"key": k, **m, "days": (today - m["due"]).days}
        for k, m in by_due
        if milestone_missed(_Planned(m["due"], m["status"]), now, tz)
    ]
    due_soon = [
        {"key": k, **m, "days": (m["due"] - today).days}
        for k, m in by_due
        if m["status"] == MilestoneStatus.OPEN
        and not due_date_ended(m["due"], now, tz)
        and m["due"] <= today + timedelta(days=DUE_SOON_DAYS)
    ]
    dependencies = [
        {
            "key": k,
            **d,
            "provider_name": teams[d["provider"]]["name"],
            "late": dependency_late(_Needed(d["needed_by"], d["state"]), now, tz),
        }
        for k, d in sorted(live["dependency"].items(), key=lambda item: item[1]["needed_by"])
        if d["state"] != DependencyState.DELIVERED
    ]
    return {
        "organization": state.settings["organization"],
        "timezone": state.settings["timezone"],
        "today": today,
        "objectives": list(objectives.values()),
        "initiatives": initiatives,
        "missed": missed,
        "due_soon": due_soon,
        "due_soon_days": DUE_SOON_DAYS,
        "dependencies": dependencies,
    }


def print_imported(changes: ChangeSet, database_url: str) -> None:
    """What the import wrote, in counts per kind (the example is new, so everything is created)."""
    sys.stdout.write(
        render_text(
            "text/demo_imported.txt.j2",
            database=make_url(database_url).database,
            created={
                kind: len(kind_changes.created) for kind, kind_changes in changes.kinds.items()
            },
            readings=len(changes.new_readings),
            people=len(changes.new_people),
        )
    )


def print_summary(engine: Engine, now: datetime) -> None:
    sys.stdout.write(render_text("text/demo_summary.txt.j2", **summary_context(engine, now)))


def print_quarter(
    engine: Engine, args: argparse.Namespace, scenario: Any, scenario_path: Path, now: datetime
) -> None:
    # The server stack and matplotlib are loaded only once the import has worked.
    from bot.entry.quarter.run import check_scenario, run_quarter

    check_scenario(engine, scenario, scenario_path)
    result = run_quarter(
        engine,
        args.database,
        scenario,
        scenario_label=scenario_path.name,
        start=now,
        report_dir=Path(getattr(args, "report", "demo-report")),
        progress=sys.stderr.isatty(),
    )
    sys.stdout.write(result.text)
