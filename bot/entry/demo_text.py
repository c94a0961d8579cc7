"""Block Kit read back as a person sees it, in plain terminal text (for the demo's account)."""

from __future__ import annotations

import html
import re
from typing import Any

# <!date^1700000000^{date_short}|Nov 14> shows its fallback; <@U123> the person's name;
# <https://…|label> its label; *bold*, _italic_ and ~strike~ lose their markers.
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^|>]+)\|([^>]*)>")
_BARE_LINK = re.compile(r"<([^@!#][^>]*)>")
_EMPHASIS = re.compile(r"(?<![\w*_~])([*_~])(\S(?:.*?\S)?)\1(?![\w*_~])")


def plain(mrkdwn: str, names: dict[str, str]) -> str:
    """One mrkdwn text as plain text."""
    text = _DATE.sub(r"\1", mrkdwn)
    text = _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _LINK.sub(r"\2", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    return html.unescape(text)


def block_texts(block: dict[str, Any]) -> list[str]:
    """The texts a block shows, in reading order (buttons as [label])."""
    kind = block.get("type")
    if kind in ("header", "section"):
        text = block.get("text") or {}
        # A field is a label line and a value line: "Owner: @Alice Chen" reads better.
        fields = [f.get("text", "").replace("\n", ": ", 1) for f in block.get("fields") or []]
        return [t for t in [text.get("text", ""), *fields] if t]
    if kind == "context":
        return [" · ".join(e.get("text", "") for e in block.get("elements") or [] if "text" in e)]
    if kind == "actions":
        labels = [
            f"[{e['text']['text']}]"
            for e in block.get("elements") or []
            if isinstance(e.get("text"), dict)
        ]
        return [" ".join(labels)] if labels else []
    return []


def plain_lines(blocks: list[dict[str, Any]], names: dict[str, str], limit: int) -> list[str]:
    """The first `limit` non-empty lines of a message's blocks, as plain text."""
    lines: list[str] = []
    for block in blocks:
        for text in block_texts(block):
            lines += [line.strip() for line in plain(text, names).splitlines() if line.strip()]
    return lines[:limit]
