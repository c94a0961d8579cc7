"""Shared fixtures: every test gets its own database, SQLite by default, PostgreSQL when asked."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.db import alembic_config, make_engine

PG_ENV = "PLANPULSE_TEST_DATABASE_URL"

pytest_plugins = ["tests.slack_harness"]


def _postgres_base_url() -> str | None:
    return os.environ.get(PG_ENV) or None


def _postgres_reachable(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not reachable here"
        return False
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    """The PostgreSQL server the suite may use; skips (saying why) when there is none."""
    url = _postgres_base_url()
    if url is None:
        pytest.skip(f"PostgreSQL tests need {PG_ENV}; not set, so they are skipped")
    if not _postgres_reachable(url):
        pytest.skip(f"PostgreSQL at {url} is not reachable; PostgreSQL tests skipped")
    return url


def _new_postgres_schema(base_url: str) -> tuple[str, str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    separator = "&" if "?" in base_url else "?"
    return schema, f"{base_url}{separator}options=-csearch_path%3D{schema}"


def _drop_postgres_schema(base_url: str, schema: str) -> None:
    admin = make_engine(base_url)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def empty_database_url(tmp_path, request) -> Iterator[str]:
    """A database with no tables: SQLite in tmp_path, or a fresh schema on PostgreSQL."""
    base = _postgres_base_url()
    if base is None:
        yield f"sqlite:///{tmp_path / 'planpulse-test.db'}"
        return
    postgres = request.getfixturevalue("postgres_base_url")
    schema, url = _new_postgres_schema(postgres)
    try:
        yield url
    finally:
        _drop_postgres_schema(postgres, schema)


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A database with the current schema, stamped at the newest migration."""
    from alembic import command

    engine = make_engine(empty_database_url)
    SQLModel.metadata.create_all(engine)
    command.stamp(alembic_config(engine), "head")
    engine.dispose()
    return empty_database_url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()
