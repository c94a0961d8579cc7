"""Audit log writes: many entries in one statement, so a large import stays a bulk operation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlmodel import Session

from storage.models import AuditEntry


def insert_audit_entries(*, session: Session, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(AuditEntry.__table__), list(rows))  # type: ignore[attr-defined]
