"""`planpulse demo`'s quarter, end to end: the live bot, the scenario played out, the timeline
printed and the HTML report written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.directory import sync_people
from bot.entry.quarter.live import live_bot
from bot.entry.quarter.quarter import Did, Quarter, SimClock
from bot.entry.quarter.report import plan_state, write_report
from bot.entry.quarter.scenario import Scenario, check_names
from bot.entry.quarter.timeline import Act, Post, Week, build_timeline
from bot.timezones import local_date, plan_zone
from storage import demo as q
from storage.models import MilestoneStatus, PlanSettings
from templates import render_text
from templates.ids import MessageEvents


@dataclass(frozen=True)
class QuarterResult:
    weeks: list[Week]
    report: Path
    text: str  # the timeline, for the terminal


def act_text(did: Did) -> str:
    return render_text("text/demo_act.txt.j2", did=did).strip()


def check_scenario(engine: Engine, scenario: Scenario, path: Path) -> None:
    """The scenario names only what the imported plan has (a UserError before anything runs)."""
    with Session(engine) as session:
        check_names(scenario, path, **q.plan_keys(session=session))


@contextmanager
def _progress(enabled: bool, start: datetime, total_seconds: float) -> Iterator[object]:
    """A rich progress bar over simulated time (on stderr, gone when done)."""
    if not enabled:
        yield lambda _now: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("Simulating the quarter"),
        BarColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("", total=total_seconds)

        def update(now: datetime) -> None:
            progress.update(
                task, completed=(now - start).total_seconds(), description=now.strftime("%d %b")
            )

        yield update


def _totals(engine: Engine, weeks: list[Week]) -> dict[str, int]:
    entries = [e for week in weeks for e in week.entries]
    with Session(engine) as session:
        milestones = q.milestones_by_due(session=session)
        moved = len(
            {d.milestone_id for d in q.decisions_in_order(session=session) if d.new_due is not None}
        )
    return {
        "posts": sum(1 for e in entries if isinstance(e, Post) and not e.updated),
        "updates": sum(1 for e in entries if isinstance(e, Post) and e.updated),
        "charts": sum(len(e.images) for e in entries if isinstance(e, Post)),
        "acts": sum(1 for e in entries if isinstance(e, Act)),
        "moved": moved,
        "descoped": sum(1 for m in milestones if m.status == MilestoneStatus.DESCOPED),
        "done": sum(1 for m in milestones if m.status == MilestoneStatus.DONE),
        "digests": sum(w.count(MessageEvents.DIGEST) for w in weeks),
    }


def run_quarter(
    engine: Engine,
    database_url: str,
    scenario: Scenario,
    *,
    scenario_label: str,
    start: datetime,
    report_dir: Path,
    progress: bool = True,
) -> QuarterResult:
    """Play the scenario out from `start` (the import) and write the report."""
    clock = SimClock(start)
    with live_bot(engine, database_url, clock) as bot:
        sync_people(bot.services, start)
        quarter = Quarter(bot, scenario, clock)
        with _progress(progress, start, (quarter.end - start).total_seconds()) as update:
            run = quarter.run(progress=update)  # type: ignore[arg-type]
        with Session(engine) as session:
            plan = session.get(PlanSettings, 1) or PlanSettings()
            tz = plan_zone(plan.timezone)
            state = plan_state(session, local_date(clock.now, tz))
        weeks = build_timeline(run, bot.standin, tz)
        names = bot.names()
    context = {
        "organization": plan.organization,
        "tz": tz.key,
        "zone": tz,
        "scenario": scenario_label,
        "act_text": act_text,
    }
    report = write_report(report_dir, weeks=weeks, state=state, names=names, context=context)
    text = render_text(
        "text/demo_quarter.txt.j2",
        weeks=weeks,
        totals=_totals(engine, weeks),
        report=report.resolve(),
        **context,
    )
    return QuarterResult(weeks=weeks, report=report, text=text)
