"""Typed errors: a UserError carries problems shown to a person as plain sentences; anything else is a bug."""

from __future__ import annotations

from bot.problems import Problem


class UserError(Exception):
    """Bad input, not allowed, or not found.

    Raised with typed problems (`UserError(problem(Code.X, field, ...))`); the edge that shows
    it words them from the templates' catalogue (handlers/errors.py for Slack, bot/entry/cli.py for
    the terminal). `message` is the older form, a sentence written in code, being phased out.
    """

    def __init__(self, *problems: Problem | str, field: str | None = None) -> None:
        self.problems = tuple(p for p in problems if isinstance(p, Problem))
        texts = [p for p in problems if isinstance(p, str)]
        self.message = " ".join(texts) if texts else ", ".join(p.code for p in self.problems)
        super().__init__(self.message)
        self.field = field or next((p.field for p in self.problems if p.field), None)


class NotAllowed(UserError):
    """The person asking may not do this."""


class NotFound(UserError):
    """The thing asked for does not exist."""


class ConfigurationError(UserError):
    """A setting required by the chosen command is missing or malformed."""
