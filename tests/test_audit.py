"""The audit log records who changed what, when, before and after, in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlmodel import Session, select

from bot.audit import record
from storage.models import AuditEntry


def test_record_keeps_actor_time_and_json_safe_values(engine):
    now = datetime(2027, 1, 4, 14, 30, tzinfo=UTC)
    with Session(engine) as session:
        record(
            session,
            actor="slack:U0ALICE01",
            action="update",
            entity="milestone",
            entity_key="beta-ready",
            before={"due": date(2027, 1, 15)},
            after={"due": date(2027, 1, 22), "members": ("a", "b")},
            now=now,
        )
        session.commit()
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry)).one()
    assert (entry.actor, entry.action, entry.entity, entry.entity_key) == (
        "slack:U0ALICE01",
        "update",
        "milestone",
        "beta-ready",
    )
    assert entry.at == now
    assert entry.before == {"due": "2027-01-15"}
    assert entry.after == {"due": "2027-01-22", "members": ["a", "b"]}


def test_an_entry_is_rolled_back_with_the_change_it_describes(engine):
    now = datetime(2027, 1, 4, 14, 30, tzinfo=UTC)
    with pytest.raises(RuntimeError), Session(engine) as session:
        record(
            session,
            actor="system",
            action="create",
            entity="team",
            entity_key="it",
            before=None,
            after={"name": "IT"},
            now=now,
        )
        raise RuntimeError("the change failed")
    with Session(engine) as session:
        assert session.exec(select(AuditEntry)).all() == []
