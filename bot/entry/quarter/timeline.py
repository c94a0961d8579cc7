"""The quarter read back as a timeline: week by week, what the bot posted and what people did.

Built from the stand-in's record of Web API calls (what Slack received) and the scripted acts,
in the order they happened; the terminal and the HTML report word it from templates.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.entry.demo_text import plain, plain_lines
from bot.entry.quarter.quarter import Did, QuarterRun
from standin import StandIn
from standin.server import Call

WEEK = timedelta(weeks=1)
LINE_CHARS = 140


@dataclass
class Post:
    """A message the bot posted or redrew, as the stand-in saw it."""

    at: datetime
    where: str  # "#exec-decisions" or "Alice Chen (DM)"
    kind: str | None  # the message's metadata event type
    text: str  # the first line a person reads
    blocks: list[dict[str, Any]]
    fallback: str
    in_thread: bool = False
    updated: bool = False
    images: list[str] = field(default_factory=list)  # data: URIs of the files it shares


@dataclass
class Act:
    at: datetime
    did: Did


Entry = Post | Act


@dataclass
class Week:
    number: int
    first_day: date
    last_day: date
    entries: list[Entry] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for e in self.entries if isinstance(e, Post) and e.kind == kind)


def _event_type(call: Call) -> str | None:
    metadata = call.params.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    return metadata.get("event_type") if isinstance(metadata, dict) else None


def _blocks(call: Call) -> list[dict[str, Any]]:
    blocks = call.params.get("blocks")
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return []
    return [b for b in blocks or [] if isinstance(b, dict)]


class _Places:
    """Channel and DM IDs as a person reads them."""

    def __init__(self, standin: StandIn) -> None:
        workspace = standin.workspace
        self.names = {u.id: u.real_name or u.name for u in workspace.users.values()}
        self.where = {c.id: f"#{c.name}" for c in workspace.channels.values()}
        for user_id, name in self.names.items():
            label = f"{name} (DM)"
            self.where[user_id] = label
            self.where[standin.dm_channel(user_id)] = label

    def of(self, channel: Any) -> str:
        return self.where.get(str(channel), str(channel))


def _images(call: Call, standin: StandIn) -> list[str]:
    files = call.params.get("files")
    if isinstance(files, str):
        try:
            files = json.loads(files)
        except ValueError:
            files = []
    ids = {str(f.get("id")) for f in files or [] if isinstance(f, dict)}
    return [
        "data:image/png;base64," + base64.b64encode(f.content).decode()
        for f in standin.uploaded_files()
        if f.id in ids and f.content
    ]


def _post(call: Call, at: datetime, places: _Places, standin: StandIn) -> Post | None:
    if not call.ok:
        return None
    if call.method in ("chat.postMessage", "chat.update"):
        blocks = _blocks(call)
        fallback = str(call.params.get("text", ""))
        lines = plain_lines(blocks, places.names, 2) or [plain(fallback, places.names)]
        # A header alone says little ("Missed milestone"): the line under it says what.
        headed = bool(blocks) and blocks[0].get("type") == "header" and len(lines) > 1
        return Post(
            at=at,
            where=places.of(call.response.get("channel") or call.params.get("channel")),
            kind=_event_type(call),
            text=(f"{lines[0]}: {lines[1]}" if headed else lines[0])[:LINE_CHARS],
            blocks=blocks,
            fallback=fallback,
            in_thread=bool(call.params.get("thread_ts")),
            updated=call.method == "chat.update",
        )
    if call.method == "files.completeUploadExternal":
        comment = str(call.params.get("initial_comment", ""))
        return Post(
            at=at,
            where=places.of(call.params.get("channel_id")),
            kind="file",
            text=plain_lines([{"type": "section", "text": {"text": comment}}], places.names, 1)[0][
                :LINE_CHARS
            ]
            if comment
            else "a chart",
            blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": comment}}]
            if comment
            else [],
            fallback=comment,
            in_thread=bool(call.params.get("thread_ts")),
            images=_images(call, standin),
        )
    return None


def build_timeline(run: QuarterRun, standin: StandIn, tz: ZoneInfo) -> list[Week]:
    """Every week of the quarter with its entries, in order (weeks start on the import's day)."""
    places = _Places(standin)
    first = run.start.astimezone(tz).date()
    weeks = [
        Week(n + 1, first + n * WEEK, first + (n + 1) * WEEK - timedelta(days=1))
        for n in range(run.weeks)
    ]
    for moment in run.moments:
        index = min(int((moment.at - run.start) / WEEK), run.weeks - 1)
        entries = weeks[index].entries
        if moment.did is not None:
            entries.append(Act(moment.at, moment.did))
        for call in run.calls[moment.calls[0] : moment.calls[1]]:
            post = _post(call, moment.at, places, standin)
            if post is not None:
                entries.append(post)
    return weeks
