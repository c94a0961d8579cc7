"""Typed errors: a UserError carries problems shown to a person as plain sentences; anything else is a bug."""

from __future__ import annotations

from bot.problems import Problem
from templates.problems import say_all


class UserError(Exception):
    """Bad input, not allowed, or not found.

    Raised with typed problems (`UserError(problem(Code.X, field, ...))`); the edge that shows
    it words them from the templates' catalogue (handlers/errors.py for Slack, bot/entry/cli.py for
    the terminal). A plain string is kept for text worded before it is raised: PlanProblems'
    listing of a whole plan file (and the tests' stand-in listeners).
    """

    def __init__(self, *problems: Problem | str, field: str | None = None) -> None:
        self.problems = tuple(p for p in problems if isinstance(p, Problem))
        self._texts = [p for p in problems if isinstance(p, str)]
        super().__init__(*problems)
        self.field = field or next((p.field for p in self.problems if p.field), None)

    @property
    def message(self) -> str:
        """For logs and `str()`: the given text, or the problems as the terminal words them."""
        if self._texts:
            return " ".join(self._texts)
        return say_all(self.problems, "cli")

    def __str__(self) -> str:
        return self.message


class NotAllowed(UserError):
    """The person asking may not do this."""


class NotFound(UserError):
    """The thing asked for does not exist."""


class ConfigurationError(UserError):
    """A setting required by the chosen command is missing or malformed."""
