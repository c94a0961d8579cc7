"""Import a validated plan: compare it with the database, then apply it in one transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.planfile.apply import apply_changes
from bot.planfile.diff import ChangeSet, compute_changes
from bot.planfile.schema import PlanFile
from bot.planfile.state import People, PlanState, state_from_plan, state_from_rows
from storage.db import session_scope
from storage.plan import load_plan_rows, lock_plan_for_import


def stored_state(session: Session) -> tuple[PlanState, People]:
    """The plan the database holds, read with one query per kind."""
    rows = load_plan_rows(session=session)
    people = People(rows.people)
    return state_from_rows(rows, people), people


def import_plan(
    engine: Engine, plan: PlanFile, *, actor: str, now: datetime, dry_run: bool = False
) -> ChangeSet:
    """Idempotent upsert by key; items missing from the plan are archived, returning ones restored.

    Reading and writing share one transaction, so a concurrent change cannot slip in between the
    comparison and the writes, and an interrupted import leaves the previous plan as it was.
    """
    with session_scope(engine) as session:
        if not dry_run:
            lock_plan_for_import(session=session)
        stored, people = stored_state(session)
        changes = compute_changes(
            state_from_plan(plan, people), stored, lambda ref: people.id_of(ref) is not None
        )
        if changes.changed and not dry_run:
            apply_changes(session, changes, people, actor=actor, now=now)
    return changes
