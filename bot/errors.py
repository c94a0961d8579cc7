"""Typed errors: a UserError is shown to a person as one plain sentence, anything else is a bug."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, not allowed, or not found: the message is safe to show as it is."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotAllowed(UserError):
    """The person asking may not do this."""


class NotFound(UserError):
    """The thing asked for does not exist."""


class ConfigurationError(UserError):
    """A setting required by the chosen command is missing or malformed."""
