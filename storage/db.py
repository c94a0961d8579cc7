"""Engines, sessions and the schema version: one place decides how PlanPulse talks to its database."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from bot.errors import ConfigurationError
from bot.problems import ProblemCode, problem

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
