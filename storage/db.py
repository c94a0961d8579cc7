"""Engines, sessions and the schema version: one place decides how PlanPulse talks to its database."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlmodel import Session, create_engine

from bot.errors import ConfigurationError
from bot.problems import ProblemCode, problem

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

T = TypeVar("T")

# Pauses before the second and third try of a `transaction` whose connection went away: short,
# because a modal's submission retries before its ack (3 s), and a fresh connection is usually
# there at once (pool_pre_ping throws out the dead ones, the pool is invalidated on a disconnect).
RETRY_PAUSES = (0.1, 0.5)


class DatabaseProblem(ProblemCode):
    """Why the database cannot be used as it is."""

    UNREACHABLE = "database.unreachable"  # detail: the driver's error
    SCHEMA_BEHIND = "database.schema_behind"  # current (None before any migration), head


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and a busy timeout so a tick and a server can share it."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: committed when the block ends, rolled back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


class Saving(StrEnum):
    """What a person's click was saving, for the sentence that says it was not saved."""

    PULSE_ANSWER = "pulse_answer"
    VOTE = "vote"


class NotSaved(Exception):
    """The database could not take a person's change on any try (unreachable, or it dropped the
    connection each time): nothing was written, and the person must be told so."""

    def __init__(self, what: Saving) -> None:
        super().__init__(f"{what} not saved: the database did not answer")
        self.what = what


class SavedNotShown(Exception):
    """A person's change was committed, but the database went away before the bot could show it
    (redraw the message, the Home tab): they are told it is saved, not that it failed."""

    def __init__(self, what: Saving) -> None:
        super().__init__(f"{what} saved, but not shown: the database did not answer")
        self.what = what


@contextmanager
def once_saved(what: Saving) -> Iterator[None]:
    """Around the work that shows a committed change: a database failure becomes SavedNotShown."""
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        raise SavedNotShown(what) from exc


def transaction(engine: Engine, work: Callable[[Session], T], *, what: Saving) -> T:
    """`work(session)` in one transaction; tried again on a fresh connection when the database
    went away under it (a restart, a killed backend), and `NotSaved` when it stays away.

    Only for work that is safe to repeat: a person's answer or vote finds what an earlier try
    committed (a COMMIT whose reply was lost) and writes nothing twice. A UserError, or any
    other error, is raised at once.
    """
    for pause in (*RETRY_PAUSES, None):
        try:
            with session_scope(engine) as session:
                return work(session)
        except DBAPIError as exc:
            if not _connection_lost(engine, exc):
                if isinstance(exc, OperationalError):  # e.g. SQLite still locked after its timeout
                    raise NotSaved(what) from exc
                raise
            if pause is None:
                raise NotSaved(what) from exc
            log.warning("the database dropped the connection (%s); trying again", exc.orig)
            time.sleep(pause)
    raise AssertionError("unreachable")  # the loop returns or raises


def _connection_lost(engine: Engine, exc: DBAPIError) -> bool:
    """A disconnect SQLAlchemy noticed, or (PostgreSQL) any connection-level failure."""
    if exc.connection_invalidated:
        return True
    return engine.dialect.name == "postgresql" and isinstance(
        exc, (OperationalError, InterfaceError)
    )


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (`planpulse db upgrade`)."""
    command.upgrade(alembic_config(engine), "head")


def ensure_schema(engine: Engine) -> None:
    """Check the schema before work starts.

    Embedded SQLite upgrades itself: nobody else shares the file's schema. A shared PostgreSQL is
    never migrated by surprise: an operator runs `planpulse db upgrade` when every replica is ready.
    """
    try:
        current = current_revision(engine)
    except OperationalError as exc:
        raise ConfigurationError(
            problem(DatabaseProblem.UNREACHABLE, detail=str(exc.orig))
        ) from None
    head = head_revision()
    if current == head:
        return
    if engine.dialect.name == "sqlite":
        log.info("Upgrading the SQLite schema from %s to %s", current, head)
        upgrade(engine)
        return
    raise ConfigurationError(problem(DatabaseProblem.SCHEMA_BEHIND, current=current, head=head))


def database_answers(engine: Engine) -> bool:
    """True when a trivial query succeeds (used by /healthz)."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError:
        return False
    return True


def insert_or_skip(session: Session, table: Any) -> Any:
    """An INSERT that can say ON CONFLICT DO NOTHING, on both supported databases."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
