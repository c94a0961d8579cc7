"""Periodic job runs: one row per (job, period), claimed by whichever process gets there first."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, update
from sqlmodel import Session, col

from storage.db import insert_or_skip
from storage.models import JobRun


def claim_job_run(*, session: Session, job: str, period: str, now: datetime) -> int | None:
    """Claim one run of `job` for `period`; None when some process already has it."""
    statement = (
        insert_or_skip(session, JobRun)
        .values(job=job, period=period, started_at=now)
        .on_conflict_do_nothing(index_elements=["job", "period"])
        .returning(col(JobRun.id))
    )
    row = session.connection().execute(statement).first()
    return int(row[0]) if row else None


def finish_job_run(*, session: Session, run_id: int, now: datetime) -> None:
    session.connection().execute(
        update(JobRun).where(col(JobRun.id) == run_id).values(finished_at=now)
    )


def release_job_run(*, session: Session, run_id: int) -> None:
    """Drop a failed run's claim so a later tick tries the job again."""
    session.connection().execute(delete(JobRun).where(col(JobRun.id) == run_id))
