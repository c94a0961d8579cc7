"""A signed request's body, parsed and checked for the shape Slack sends before Bolt reads any of it.

Bolt (1.30) assumes Slack's shapes while it builds the request context, picks a listener and
even while it reports an error: `"event": 42`, `"actions": []`, `"view": null`, a `payload=` that
is a JSON array or a 100,000-deep nesting each raised inside Bolt and came back as a 500 with a
traceback. `read_envelope` rejects those first, with `Malformed` (answered 400, or 200 for an
event), so what reaches Bolt has the fields it reads with the types it expects.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

# Slack's payloads nest about a dozen levels (a rich-text input in a modal's state); the limit is
# far above that and far below the recursion limit of everything that walks a payload.
MAX_DEPTH = 64

# Fields read as IDs or strings by Bolt or by every listener, wherever they appear.
_STRINGS = (
    "type",
    "subtype",
    "command",
    "callback_id",
    "action_id",
    "block_id",
    "trigger_id",
    "response_url",
    "event_id",
    "api_app_id",
    "user_id",
    "team_id",
    "enterprise_id",
    "channel_id",
    "channel_type",
    "thread_ts",
    "bot_id",
    "tab",
    "function_execution_id",
    "bot_access_token",
    "app_installed_team_id",
    "private_metadata",
)
# A string ID, an object with an ID, or null (Slack uses all three, depending on the payload).
_REFERENCES = ("enterprise", "team", "user", "channel")
# Objects that Bolt looks inside, often as `body.get("event", {}).get(...)`: absent, or an object.
_OBJECTS = (
    "event",
    "view",
    "message",
    "previous_message",
    "item",
    "assistant_thread",
    "function_data",
    "workflow_step",
    "container",
    "state",
    "function",
    "tokens",
)
# The nested objects Bolt extracts IDs from, checked by the same rules.
_NESTED = ("event", "view", "message", "previous_message", "item", "assistant_thread")

# What each interactivity type must carry for Bolt to route it.
_NEEDS_CALLBACK_ID = (
    "interactive_message",
    "dialog_submission",
    "dialog_cancellation",
    "dialog_suggestion",
    "workflow_step_edit",
    "shortcut",
    "message_action",
)


class Malformed(Exception):
    """Slack signed it, but it is not something Slack sends: refused before Bolt sees it."""


def read_envelope(raw: bytes, content_type: str | None) -> tuple[str, dict[str, Any]]:
    """The body as text (what Bolt is given) and as the dict Slack meant; `Malformed` otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Malformed("the body is not UTF-8") from None
    body = parse_body(text, content_type)
    _check_depth(body)
    check_shape(body)
    return text, body


def parse_body(text: str, content_type: str | None) -> dict[str, Any]:
    """Parsed as Slack meant it: JSON (events), a `payload` field (interactivity), or a form."""
    media_type = content_type.split(";")[0] if content_type else None
    if not text:
        raise Malformed("the body is empty")
    # The same choice of format as Bolt's own parser, so both read the same thing.
    if media_type == "application/json" or text.startswith("{"):
        return _json_object(text)
    form = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in form:
        return _json_object(form["payload"])
    return form


def is_event(body: Any) -> bool:
    """An Events API envelope: nobody waits for its answer, and Slack retries anything but a 2xx."""
    return isinstance(body, dict) and body.get("type") == "event_callback"


def check_shape(body: dict[str, Any]) -> None:
    if not any(key in body for key in ("type", "command", "ssl_check")):
        raise Malformed("neither a type nor a command")
    _check_fields(body, "")
    for index, authorization in enumerate(_list_of_objects(body, "authorizations")):
        _check_fields(authorization, f"authorizations.{index}.")
    for index, answer in enumerate(_list_of_objects(body, "response_urls")):
        _string(answer, "response_url", f"response_urls.{index}.")
    kind = body.get("type")
    if kind == "event_callback":
        event = _required_object(body, "event")
        _required_string(event, "type", "event.")
    elif kind in ("block_actions", "interactive_message"):
        actions = _list_of_objects(body, "actions")
        if not actions:
            raise Malformed("actions is not a non-empty list")
        for index, action in enumerate(actions):
            _check_fields(action, f"actions.{index}.")
            if kind == "block_actions":
                _required_string(action, "action_id", f"actions.{index}.")
        if kind == "interactive_message":
            _required_string(body, "callback_id", "")
    elif kind in ("view_submission", "view_closed"):
        view = _required_object(body, "view")
        _required_string(view, "callback_id", "view.")
        _required_string(view, "type", "view.")
        if view["type"] == "workflow_step":
            _required_object(body, "workflow_step")
    elif kind == "block_suggestion":
        _required_string(body, "action_id", "")
    elif kind in _NEEDS_CALLBACK_ID:
        _required_string(body, "callback_id", "")
        if kind == "workflow_step_edit":
            _required_object(body, "workflow_step")


def _check_fields(node: dict[str, Any], where: str, depth: int = 0) -> None:
    for key in _STRINGS:
        _string(node, key, where)
    for key in _REFERENCES:
        value = node.get(key)
        if isinstance(value, dict):
            for id_key in ("id", "team_id", "enterprise_id"):
                _string(value, id_key, f"{where}{key}.")
        elif value is not None and not isinstance(value, str):
            raise Malformed(f"{where}{key} is neither an ID nor an object")
    for key in _OBJECTS:
        if key in node and not isinstance(node[key], dict):
            raise Malformed(f"{where}{key} is not an object")
    if depth < 2:  # event.message.user is as deep as Bolt looks
        for key in _NESTED:
            value = node.get(key)
            if isinstance(value, dict):
                _check_fields(value, f"{where}{key}.", depth + 1)


def _string(node: dict[str, Any], key: str, where: str) -> None:
    value = node.get(key)
    if value is not None and not isinstance(value, str):
        raise Malformed(f"{where}{key} is not a string")


def _required_string(node: dict[str, Any], key: str, where: str) -> str:
    value = node.get(key)
    if not isinstance(value, str):
        raise Malformed(f"{where}{key} is missing or not a string")
    return value


def _required_object(node: dict[str, Any], key: str) -> dict[str, Any]:
    value = node.get(key)
    if not isinstance(value, dict):
        raise Malformed(f"{key} is missing or not an object")
    return value


def _list_of_objects(node: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Absent, or a list of objects (Bolt takes the length of whatever is there)."""
    if key not in node:
        return []
    value = node[key]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise Malformed(f"{key} is not a list of objects")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        # ValueError covers bad JSON and integers too long to convert; RecursionError, nesting
        # deeper than the decoder's own stack.
        raise Malformed("the body is not JSON") from None
    if not isinstance(value, dict):
        raise Malformed("the payload is not a JSON object")
    return value


def _check_depth(body: dict[str, Any]) -> None:
    """Iteratively, so that measuring a deep payload cannot itself overflow the stack."""
    stack: list[tuple[Any, int]] = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise Malformed(f"the payload nests deeper than {MAX_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
