"""Typed reads from Slack payloads: a missing or wrong-typed field raises `BadPayload`, not KeyError.

user_id = payload_str(body, "user", "id")
value = payload_str(body, "actions", 0, "value")
words = command_words(body)
values = form_values(view)
"""

from __future__ import annotations

import re
from typing import Any

# Control characters nobody types into a slash command or a modal; NUL in particular cannot be
# sent to PostgreSQL in a query parameter at all ("PostgreSQL text fields cannot contain NUL").
_UNTYPABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class BadPayload(Exception):
    """Slack sent something this listener cannot read; logged as a warning, answered politely."""


def payload_value(body: Any, *path: str | int) -> Any:
    node = body
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            raise BadPayload(f"payload has no {'.'.join(map(str, path))}") from None
    return node


def payload_str(body: Any, *path: str | int) -> str:
    value = payload_value(body, *path)
    if not isinstance(value, str) or not value:
        raise BadPayload(f"payload field {'.'.join(map(str, path))} is not a non-empty string")
    return value


def payload_dict(body: Any, *path: str | int) -> dict[str, Any]:
    value = payload_value(body, *path)
    if not isinstance(value, dict):
        raise BadPayload(f"payload field {'.'.join(map(str, path))} is not an object")
    return value


def optional_str(body: Any, *path: str | int) -> str | None:
    try:
        value = payload_value(body, *path)
    except BadPayload:
        return None
    return value if isinstance(value, str) and value else None


def command_words(body: Any) -> list[str]:
    """A slash command's text as words: whitespace collapsed, untypable control characters dropped."""
    text = body.get("text") if isinstance(body, dict) else None
    return _UNTYPABLE.sub("", text if isinstance(text, str) else "").split()


def form_values(view: Any) -> dict[str, Any]:
    """A submitted modal's `state.values`, every text in it without untypable control characters."""
    values: dict[str, Any] = _typable(payload_dict(view, "state", "values"))
    return values


def _typable(node: Any) -> Any:
    if isinstance(node, str):
        return _UNTYPABLE.sub("", node)
    if isinstance(node, dict):
        return {_typable(key): _typable(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_typable(item) for item in node]
    return node
