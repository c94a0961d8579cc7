"""Block Kit checks the stand-in applies, as Slack does: slack_sdk's models plus the documented limits."""

from __future__ import annotations

import json
from typing import Any

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_TEXT = 40_000

# Limits slack_sdk's models do not check (or not everywhere), from Slack's Block Kit reference.
_STRING_LIMITS = {
    "action_id": 255,
    "block_id": 255,
    "callback_id": 255,
    "private_metadata": 3000,
    "external_id": 255,
}


class Invalid(Exception):
    """One reason Slack would refuse the payload, worded like Slack's `response_metadata` messages."""


def parse_json_param(value: Any, *, what: str) -> Any:
    """Form-encoded requests carry blocks/views/metadata as JSON strings; JSON bodies carry values."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise Invalid(f"{what} is not valid JSON: {exc.msg}") from None
    return value


def check_blocks(blocks: Any, *, limit: int = MAX_MESSAGE_BLOCKS, where: str = "blocks") -> None:
    if not isinstance(blocks, list):
        raise Invalid(f"{where} must be an array")
    if len(blocks) > limit:
        raise Invalid(f"{where} has {len(blocks)} blocks, more than the {limit} allowed")
    for index, raw in enumerate(blocks):
        if not isinstance(raw, dict):
            raise Invalid(f"{where}[{index}] must be an object")
        block = Block.parse(raw)
        if block is None:
            raise Invalid(f"{where}[{index}] has unknown type {raw.get('type')!r}")
        try:
            block.validate_json()
        except (SlackObjectFormationError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise Invalid(f"{where}[{index}]: {exc}") from None
        _check_limits(raw, f"{where}[{index}]")


def check_view(view: Any, *, kind: str | None = None) -> None:
    if not isinstance(view, dict):
        raise Invalid("view must be an object")
    if kind is not None and view.get("type") != kind:
        raise Invalid(f"view type must be {kind!r}, got {view.get('type')!r}")
    if view.get("type") not in ("modal", "home"):
        raise Invalid(f"unknown view type {view.get('type')!r}")
    blocks = view.get("blocks")
    check_blocks(blocks, limit=MAX_VIEW_BLOCKS, where="view.blocks")
    try:
        View(**view).validate_json()
    except (SlackObjectFormationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise Invalid(f"view: {exc}") from None
    _check_limits({k: v for k, v in view.items() if k != "blocks"}, "view")


def check_text(text: Any, *, has_blocks: bool) -> None:
    if text is None or text == "":
        if not has_blocks:
            raise Invalid("no_text")
        return
    if not isinstance(text, str):
        raise Invalid("text must be a string")
    if len(text) > MAX_MESSAGE_TEXT:
        raise Invalid("msg_too_long")


def _check_limits(node: Any, path: str) -> None:
    """Walk a block: button texts ≤ 75, values ≤ 2000, headers ≤ 150, options ≤ 100, IDs ≤ 255."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            _check_limits(item, f"{path}[{index}]")
        return
    if not isinstance(node, dict):
        return
    for key, limit in _STRING_LIMITS.items():
        value = node.get(key)
        if isinstance(value, str) and len(value) > limit:
            raise Invalid(f"{path}.{key} is longer than {limit} characters")
    kind = node.get("type")
    text = node.get("text")
    text_body = text.get("text") if isinstance(text, dict) else None
    if kind == "button":
        if isinstance(text_body, str) and len(text_body) > 75:
            raise Invalid(f"{path}.text is longer than 75 characters")
        if isinstance(node.get("value"), str) and len(node["value"]) > 2000:
            raise Invalid(f"{path}.value is longer than 2000 characters")
    if kind == "header" and isinstance(text_body, str) and len(text_body) > 150:
        raise Invalid(f"{path}.text is longer than 150 characters")
    if kind == "modal":
        title = node.get("title")
        if isinstance(title, dict) and len(str(title.get("text", ""))) > 24:
            raise Invalid(f"{path}.title is longer than 24 characters")
    if isinstance(node.get("options"), list) and len(node["options"]) > 100:
        raise Invalid(f"{path}.options has more than 100 options")
    for key, value in node.items():
        if isinstance(value, dict | list):
            _check_limits(value, f"{path}.{key}")
