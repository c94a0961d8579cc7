"""`planpulse import`, `validate` and `export`: the plan-file commands bot/entry/cli.py dispatches to."""

from __future__ import annotations

import argparse
import getpass
import sys

from sqlalchemy.engine import Engine

from bot.clock import utcnow
from bot.planfile.export import export_plan
from bot.planfile.importer import import_plan
from bot.planfile.report import render_report
from bot.planfile.validate import load_plan
from bot.settings import load_settings
from storage.db import ensure_schema, make_engine
from templates import render_text


def cli_actor() -> str:
    """`cli:<login>` in the audit log; the login is whoever runs the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli:unknown"


def _engine() -> Engine:
    engine = make_engine(load_settings().database_url)
    ensure_schema(engine)
    return engine


def validate_command(args: argparse.Namespace) -> int:
    plan = load_plan(args.path)
    counts = {
        "teams": len(plan.teams),
        "objectives": len(plan.objectives),
        "kpis": sum(len(o.kpis) for o in plan.objectives),
        "initiatives": len(plan.initiatives),
        "milestones": sum(len(i.milestones) for i in plan.initiatives),
        "dependencies": sum(len(i.dependencies) for i in plan.initiatives),
    }
    sys.stdout.write(
        render_text(
            "text/plan_valid.txt.j2",
            source=args.path,
            organization=plan.organization,
            counts=counts,
        )
    )
    return 0


def import_command(args: argparse.Namespace) -> int:
    plan = load_plan(args.path)  # every problem is reported before the database is opened
    engine = _engine()
    try:
        changes = import_plan(
            engine, plan, actor=cli_actor(), now=utcnow(), dry_run=bool(args.dry_run)
        )
    finally:
        engine.dispose()
    sys.stdout.write(render_report(changes, source=args.path, dry_run=bool(args.dry_run)))
    return 0


def export_command(args: argparse.Namespace) -> int:
    engine = _engine()
    try:
        written = export_plan(engine, fmt=args.format, output=args.output)
    finally:
        engine.dispose()
    if written is not None:
        sys.stdout.write(render_text("text/plan_exported.txt.j2", path=written, fmt=args.format))
    return 0
