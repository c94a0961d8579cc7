"""Periodic job runs: one row per (job, period), claimed by whichever process gets there first."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlmodel import Session, col, select

from storage.db import insert_or_skip
from storage.models import JobRun


def claim_job_run(
    *, session: Session, job: str, period: str, now: datetime, lease: timedelta
) -> int | None:
    """Claim one run of `job` for `period`; None when some process already has it.

    A run started more than `lease` ago and never finished was left by a process that died
    (SIGKILL skips its release): it is taken over, or the job would wait for the next period.
    """
    statement = (
        insert_or_skip(session, JobRun)
        .values(job=job, period=period, started_at=now)
        .on_conflict_do_nothing(index_elements=["job", "period"])
        .returning(col(JobRun.id))
    )
    row = session.connection().execute(statement).first()
    if row:
        return int(row[0])
    taken = session.connection().execute(
        update(JobRun)
        .where(
            col(JobRun.job) == job,
            col(JobRun.period) == period,
            col(JobRun.finished_at).is_(None),
            col(JobRun.started_at) < now - lease,
        )
        .values(started_at=now)
    )
    if taken.rowcount != 1:
        return None
    return session.exec(
        select(JobRun.id).where(col(JobRun.job) == job, col(JobRun.period) == period)
    ).first()


def finish_job_run(*, session: Session, run_id: int, now: datetime) -> None:
    session.connection().execute(
        update(JobRun).where(col(JobRun.id) == run_id).values(finished_at=now)
    )


def release_job_run(*, session: Session, run_id: int) -> None:
    """Drop a failed run's claim so a later tick tries the job again."""
    session.connection().execute(delete(JobRun).where(col(JobRun.id) == run_id))
