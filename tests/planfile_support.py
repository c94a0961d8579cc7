"""Helpers for the plan-file tests: run the CLI as an operator would, and snapshot the database."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from bot.entry.cli import main

PLANS = Path(__file__).parent / "fixtures" / "plans"
BASE_PLAN = PLANS / "base.yaml"


@dataclass
class Run:
    code: int
    out: str
    err: str


class Cli:
    """`planpulse …` in-process, against the test's own database."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str) -> Run:
        self.capsys.readouterr()
        code = main(list(argv))
        captured = self.capsys.readouterr()
        return Run(code, captured.out, captured.err)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: equal snapshots mean the database is exactly as it was."""
    with engine.connect() as connection:
        return {
            table.name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
            for table in SQLModel.metadata.sorted_tables
        }


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def base_text() -> str:
    return BASE_PLAN.read_text(encoding="utf-8")


def edited(tmp_path: Path, old: str, new: str, name: str = "plan.yaml") -> Path:
    """The base plan with one textual edit (asserting the edit applies)."""
    text = base_text()
    assert old in text, old
    return write(tmp_path / name, text.replace(old, new, 1))
