"""Helpers for the fuzz tests: put the database back between examples, count and report the cases."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

Rows = dict[str, list[dict[str, Any]]]


def all_rows(engine: Engine) -> Rows:
    """Every row of every table, as column mappings (what `restore` writes back).

    Sorted, because PostgreSQL returns rows in no particular order (an UPDATE moves its row).
    """
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (dict(row) for row in connection.execute(select(table)).mappings()),
                key=lambda row: repr(sorted(row.items())),
            )
            for table in SQLModel.metadata.sorted_tables
        }


def restore(engine: Engine, rows: Rows) -> None:
    """The database exactly as `rows` had it: each example starts from the same plan.

    Primary keys are written back as they were; on PostgreSQL the sequences keep counting from
    where they are, which only ever leaves gaps, never a clash.
    """
    tables = SQLModel.metadata.sorted_tables
    with engine.begin() as connection:
        for table in reversed(tables):
            connection.execute(delete(table))
        for table in tables:
            if rows[table.name]:
                connection.execute(insert(table), rows[table.name])


def report_cases(
    ran: Counter[str],
    *,
    title: str,
    record_property: Any,
    capsys: pytest.CaptureFixture[str],
) -> int:
    """Print how many cases ran, by outcome, past pytest's capture; record the total."""
    total = sum(ran.values())
    record_property("fuzz_cases", total)
    with capsys.disabled():
        print(f"\n{total} {title}:")
        for outcome, count in sorted(ran.items()):
            print(f"  {count:4d}  {outcome}")
    return total
