"""Problems found in a plan file, each with its place, and the error that lists them all at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.errors import UserError
from templates import render_text

Path = tuple[str | int, ...]

# A 10,000-row sheet with one systematic mistake would otherwise print 10,000 lines.
MAX_LISTED_PROBLEMS = 200


@dataclass(frozen=True)
class Problem:
    place: str  # "plan.yaml, line 12" / "plan.xlsx, sheet milestones, row 5, column due"
    message: str  # one plain sentence

    def __str__(self) -> str:
        return f"{self.place}: {self.message}"


class Locator(Protocol):
    """Turns a path inside the plan document into a place a person can find in their file."""

    def place(self, path: Path) -> str: ...


class PlanProblems(UserError):
    """The plan cannot be used; the message lists every problem, one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.plan_problems = list(problems)
        super().__init__(
            render_text(
                "text/plan_problems.txt.j2",
                problems=self.plan_problems[:MAX_LISTED_PROBLEMS],
                total=len(self.plan_problems),
            ).rstrip("\n")
        )


_SINGULAR = {
    "teams": "team",
    "objectives": "objective",
    "kpis": "KPI",
    "readings": "reading",
    "initiatives": "initiative",
    "milestones": "milestone",
    "dependencies": "dependency",
    "holidays": "holiday",
    "leaders": "leader",
    "admins": "admin",
    "members": "member",
}


def describe(doc: Any, path: Path) -> str:
    """'initiative portal-beta, milestone beta-ready, due': a path as a person reads it."""
    parts: list[str] = []
    node = doc
    index = 0
    while index < len(path):
        step = path[index]
        following = path[index + 1] if index + 1 < len(path) else None
        if isinstance(step, str) and isinstance(following, int):
            items = node.get(step) if isinstance(node, dict) else None
            item = items[following] if isinstance(items, list) and following < len(items) else None
            name = _SINGULAR.get(step, step)
            key = item.get("key") if isinstance(item, dict) else None
            parts.append(
                f"{name} {key}" if isinstance(key, str | int) else f"{name} #{following + 1}"
            )
            node, index = item, index + 2
        else:
            parts.append(str(step))
            node = node.get(step) if isinstance(node, dict) else None
            index += 1
    return ", ".join(parts)
