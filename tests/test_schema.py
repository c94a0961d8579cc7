"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from bot.errors import ConfigurationError
from storage.db import current_revision, ensure_schema, head_revision, make_engine, upgrade
from storage.models import Alert, Initiative, Person, PulseRequest, Team


def test_migrations_match_models(empty_database_url):
    engine = make_engine(empty_database_url)
    upgrade(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_unmigrated_database_policy(empty_database_url):
    engine = make_engine(empty_database_url)
    if engine.dialect.name == "sqlite":
        ensure_schema(engine)  # embedded: upgrades itself
        assert current_revision(engine) == head_revision()
    else:
        with pytest.raises(ConfigurationError, match="planpulse db upgrade"):
            ensure_schema(engine)
        assert current_revision(engine) is None
    engine.dispose()


def test_one_pulse_per_initiative_and_period(engine):
    now = datetime(2027, 1, 4, 14, tzinfo=UTC)
    with Session(engine) as session:
        owner = Person(slack_id="U1", name="Alice")
        session.add(owner)
        session.flush()
        team = Team(key="it", name="IT", lead_id=owner.id)
        session.add(team)
        session.flush()
        initiative = Initiative(
            key="i", title="I", owner_id=owner.id, team_id=team.id, active_since=datetime.now(UTC)
        )
        session.add(initiative)
        session.flush()
        for _ in range(2):
            session.add(
                PulseRequest(
                    initiative_id=initiative.id, owner_id=owner.id, period="p1", due_at=now
                )
            )
        with pytest.raises(IntegrityError):
            session.flush()


def test_one_open_alert_per_condition_but_many_resolved(engine):
    now = datetime(2027, 1, 4, 14, tzinfo=UTC)
    with Session(engine) as session:
        session.add(Alert(kind="missed", subject="milestone:a", opened_at=now, open_key=None))
        session.add(Alert(kind="missed", subject="milestone:a", opened_at=now, open_key=None))
        session.add(Alert(kind="missed", subject="milestone:a", opened_at=now, open_key="k"))
        session.flush()
        session.add(Alert(kind="missed", subject="milestone:a", opened_at=now, open_key="k"))
        with pytest.raises(IntegrityError):
            session.flush()


def test_datetimes_come_back_aware_utc(engine):
    now = datetime(2027, 1, 4, 14, 30, tzinfo=UTC)
    with Session(engine) as session:
        session.add(Alert(kind="k", subject="s", opened_at=now))
        session.commit()
    with Session(engine) as session:
        alert = session.exec(select(Alert)).one()
        assert alert.opened_at == now
        assert alert.opened_at.tzinfo is not None
