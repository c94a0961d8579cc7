"""Block Kit read back as a person sees it, in plain terminal text (for the demo's account)."""

from __future__ import annotations

import html
import re
from typing import Any

# Slack's emoji names the bot's templates use, as the characters Slack shows for them.
EMOJI = {
    "red_circle": "🔴",
    "large_yellow_circle": "🟡",
    "large_green_circle": "🟢",
    "white_circle": "⚪",
    "warning": "⚠️",
    "hourglass": "⏳",
    "hourglass_flowing_sand": "⏳",
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "no_entry": "⛔",
    "ok_hand": "👌",
    "ballot_box_with_ballot": "🗳️",
    "new_moon": "🌑",
    "arrow_up": "⬆️",
    "arrow_down": "⬇️",
    "thinking_face": "🤔",
    "bell": "🔔",
    "calendar": "📅",
    "scissors": "✂️",
    "mag": "🔍",
    "chart_with_upwards_trend": "📈",
    "x": "❌",
    "rotating_light": "🚨",
    "speech_balloon": "💬",
    "zzz": "💤",
    "handshake": "🤝",
    "alarm_clock": "⏰",
    "arrow_right": "➡️",
    "ballot_box": "🗳️",
    "ballot_box_with_check": "☑️",
    "bust_in_silhouette": "👤",
    "chart_with_downwards_trend": "📉",
    "file_folder": "📁",
    "no_bell": "🔕",
    "package": "📦",
    "palm_tree": "🌴",
    "radio_button": "🔘",
    "wave": "👋",
    "arrows_counterclockwise": "🔄",
    "tada": "🎉",
    "memo": "📝",
    "clipboard": "📋",
    "pushpin": "📌",
    "eyes": "👀",
}

# <!date^1700000000^{date_short}|Nov 14> shows its fallback; <@U123> the person's name;
# <https://…|label> its label; *bold*, _italic_ and ~strike~ lose their markers.
_DATE = re.compile(r"<!date\^[^|>]*\|([^>]*)>")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_LINK = re.compile(r"<([^|>]+)\|([^>]*)>")
_BARE_LINK = re.compile(r"<([^@!#][^>]*)>")
_EMOJI = re.compile(r":([a-z0-9_+-]+):")
_EMPHASIS = re.compile(r"(?<![\w*_~])([*_~])(\S(?:.*?\S)?)\1(?![\w*_~])")


def plain(mrkdwn: str, names: dict[str, str]) -> str:
    """One mrkdwn text as plain text."""
    text = _DATE.sub(r"\1", mrkdwn)
    text = _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _LINK.sub(r"\2", text)
    text = _BARE_LINK.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
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
