"""The Web API methods the stand-in implements, over an in-memory workspace, with Slack's errors."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from standin.validation import (
    MAX_MESSAGE_BLOCKS,
    Invalid,
    check_blocks,
    check_text,
    check_view,
    parse_json_param,
)
from standin.workspace import Channel, Workspace

HISTORY_DEFAULT_LIMIT = 100
USERS_DEFAULT_LIMIT = 100


class ApiError(Exception):
    """A Slack error answer: `{"ok": false, "error": code}` (with messages for invalid payloads)."""

    def __init__(self, code: str, *messages: str) -> None:
        super().__init__(code)
        self.code = code
        self.messages = list(messages)


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    user: str
    blocks: list[Any] = field(default_factory=list)
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    edited: bool = False
    broadcast: bool = False  # a thread reply also sent to the channel (reply_broadcast)

    def as_dict(self, *, with_metadata: bool, reply_count: int = 0) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": "message",
            "ts": self.ts,
            "user": self.user,
            "text": self.text,
            "blocks": self.blocks,
        }
        if self.thread_ts is not None:
            data["thread_ts"] = self.thread_ts
        if reply_count:
            data["thread_ts"] = self.ts
            data["reply_count"] = reply_count
        if self.files:
            data["files"] = self.files
        if with_metadata and self.metadata is not None:
            data["metadata"] = self.metadata
        return data


@dataclass
class Ephemeral:
    channel: str
    user: str
    text: str
    blocks: list[Any]
    thread_ts: str | None = None


@dataclass
class StoredView:
    id: str
    view: dict[str, Any]
    hash: str
    user: str | None = None
    root_id: str | None = None

    def as_dict(self, team_id: str, app_id: str, bot_id: str) -> dict[str, Any]:
        return {
            **self.view,
            "id": self.id,
            "team_id": team_id,
            "app_id": app_id,
            "bot_id": bot_id,
            "hash": self.hash,
            "root_view_id": self.root_id or self.id,
            "private_metadata": self.view.get("private_metadata", ""),
            "callback_id": self.view.get("callback_id", ""),
            "state": {"values": {}},
        }


@dataclass
class UploadedFile:
    """A file of Slack's upload flow: URL issued, then bytes received, then completed (shared)."""

    id: str
    filename: str
    length: int
    content: bytes | None = None
    title: str = ""
    completed: bool = False
    channel: str | None = None  # where completeUploadExternal shared it
    thread_ts: str | None = None
    initial_comment: str = ""
    message_ts: str | None = None


class SlackState:
    """Everything the fake Slack remembers; every method is called with `lock` held."""

    def __init__(self, workspace: Workspace, *, base_url: Callable[[], str]) -> None:
        self.workspace = workspace
        self.lock = threading.RLock()
        self.messages: dict[str, list[Message]] = {}
        self.ephemerals: list[Ephemeral] = []
        self.dms: dict[str, str] = {}  # user ID -> D… channel
        self.views: dict[str, StoredView] = {}
        self.homes: dict[str, StoredView] = {}
        self.triggers: dict[str, tuple[float, str | None]] = {}
        self.files: dict[str, UploadedFile] = {}
        self.trigger_ttl = 3.0  # Slack: a trigger_id expires 3 seconds after the interaction
        self._base_url = base_url
        self._ids = itertools.count(1)
        self._last_ts = 0.0
        # What message timestamps are made from: the real clock, or a test's simulated one, so
        # that "posted since" questions (conversations.history `oldest`) agree with the bot's now.
        self.clock: Callable[[], float] = time.time
        # Seconds added to that clock: a test that runs the bot at a simulated instant in another
        # process (`planpulse tick --now`) moves Slack's clock along with it.
        self.clock_offset = 0.0

    # --- ids ----------------------------------------------------------------------------------

    def next_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08X}"

    def next_ts(self) -> str:
        now = max(self.clock() + self.clock_offset, self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"

    def issue_trigger(self, user_id: str | None = None) -> str:
        trigger = f"{int(time.time())}.{next(self._ids)}.standin{next(self._ids):06x}"
        self.triggers[trigger] = (time.monotonic(), user_id)
        return trigger

    def dm_channel(self, user_id: str) -> str:
        if user_id not in self.dms:
            self.dms[user_id] = self.next_id("D")
        return self.dms[user_id]

    # --- resolution ---------------------------------------------------------------------------

    def _user(self, user_id: Any) -> Any:
        user = self.workspace.users.get(str(user_id or ""))
        if user is None:
            raise ApiError("user_not_found")
        return user

    def _channel(self, ref: Any) -> Channel:
        ref = str(ref or "")
        channel = self.workspace.channels.get(ref) or self.workspace.channel_by_name(ref)
        if channel is None:
            raise ApiError("channel_not_found")
        return channel

    def conversation_for_post(self, ref: object) -> str:
        """Where a post lands: a channel the bot is in, or the DM with a user (posted by user ID)."""
        ref = str(ref or "")
        if not ref:
            raise ApiError("channel_not_found")
        if ref[0] in "UW":
            user = self.workspace.users.get(ref)
            if user is None:
                raise ApiError("channel_not_found")
            if user.deleted:
                raise ApiError("account_inactive")
            if user.is_bot:
                raise ApiError("cannot_dm_bot")
            return self.dm_channel(ref)
        if ref[0] == "D":
            owner = next((u for u, d in self.dms.items() if d == ref), None)
            if owner is None:
                raise ApiError("channel_not_found")
            if self.workspace.users[owner].deleted:
                raise ApiError("account_inactive")
            return ref
        channel = self._channel(ref)
        if channel.is_archived:
            raise ApiError("is_archived")
        if not channel.bot_member:
            raise ApiError("not_in_channel")
        return channel.id

    def readable_conversation(self, ref: object) -> str:
        ref = str(ref or "")
        if ref.startswith("D"):
            if ref not in self.dms.values():
                raise ApiError("channel_not_found")
            return ref
        channel = self._channel(ref)
        if not channel.bot_member:
            raise ApiError("not_in_channel")
        return channel.id

    def find_message(self, channel: str, ts: str) -> Message:
        for message in self.messages.get(channel, []):
            if message.ts == ts:
                return message
        raise ApiError("message_not_found")

    def _message_payload(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        try:
            blocks = parse_json_param(params.get("blocks"), what="blocks")
            if blocks is not None:
                check_blocks(blocks, limit=MAX_MESSAGE_BLOCKS)
            check_text(
                params.get("text"), has_blocks=bool(blocks) or bool(params.get("attachments"))
            )
        except Invalid as exc:
            code = str(exc)
            if code in ("no_text", "msg_too_long"):
                raise ApiError(code) from None
            raise ApiError("invalid_blocks", f"[ERROR] {exc}") from None
        return str(params.get("text") or ""), list(blocks or [])

    def _metadata(self, params: dict[str, Any]) -> dict[str, Any] | None:
        try:
            metadata = parse_json_param(params.get("metadata"), what="metadata")
        except Invalid as exc:
            raise ApiError("invalid_metadata_format", f"[ERROR] {exc}") from None
        if metadata is None:
            return None
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not isinstance(metadata.get("event_payload", {}), dict)
        ):
            raise ApiError("invalid_metadata_schema")
        return {
            "event_type": metadata["event_type"],
            "event_payload": metadata.get("event_payload", {}),
        }

    # --- methods ------------------------------------------------------------------------------

    def auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        ws = self.workspace
        return {
            "url": f"https://{ws.domain}.slack.com/",
            "team": ws.team_name,
            "user": "planpulse",
            "team_id": ws.team_id,
            "user_id": ws.bot_user_id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.conversation_for_post(params.get("channel"))
        text, blocks = self._message_payload(params)
        thread_ts = params.get("thread_ts") or None
        message = Message(
            channel=channel,
            ts=self.next_ts(),
            text=text,
            user=self.workspace.bot_user_id,
            blocks=blocks,
            thread_ts=str(thread_ts) if thread_ts else None,
            metadata=self._metadata(params),
            # Slack ignores reply_broadcast outside a thread.
            broadcast=bool(thread_ts)
            and str(params.get("reply_broadcast")).lower() in ("1", "true"),
        )
        self.messages.setdefault(channel, []).append(message)
        return {
            "channel": channel,
            "ts": message.ts,
            "message": message.as_dict(with_metadata=True),
        }

    def chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.readable_conversation(params.get("channel"))
        message = self.find_message(channel, str(params.get("ts") or ""))
        if message.user != self.workspace.bot_user_id:
            raise ApiError("cant_update_message")
        text, blocks = self._message_payload(params)
        message.text, message.blocks, message.edited = text, blocks, True
        metadata = self._metadata(params)
        if metadata is not None:
            message.metadata = metadata
        return {"channel": channel, "ts": message.ts, "text": text}

    def chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.readable_conversation(params.get("channel"))
        message = self.find_message(channel, str(params.get("message_ts") or ""))
        # Slack's shape: https://<workspace>.slack.com/archives/<channel>/p<ts without the dot>
        base = self._base_url().rstrip("/")
        return {
            "channel": channel,
            "permalink": f"{base}/archives/{channel}/p{message.ts.replace('.', '')}",
        }

    def chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.readable_conversation(params.get("channel"))
        message = self.find_message(channel, str(params.get("ts") or ""))
        self.messages[channel].remove(message)
        return {"channel": channel, "ts": message.ts}

    def chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.conversation_for_post(params.get("channel"))
        user = self._user(params.get("user"))
        if user.deleted:
            raise ApiError("user_not_found")
        if channel.startswith(("C", "G")):
            if user.id not in self.workspace.channels[channel].members:
                raise ApiError("user_not_in_channel")
        elif self.dms.get(user.id) != channel:
            raise ApiError("user_not_in_channel")
        text, blocks = self._message_payload(params)
        thread_ts = params.get("thread_ts") or None
        self.ephemerals.append(Ephemeral(channel, user.id, text, blocks, thread_ts))
        return {"message_ts": self.next_ts()}

    def conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if len(users) != 1:
            raise ApiError("not_enough_users" if not users else "too_many_users")
        user = self._user(users[0])
        if user.deleted:
            raise ApiError("user_disabled")
        return {"channel": {"id": self.dm_channel(user.id)}}

    def conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel(params.get("channel")).as_conversation()}

    def conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        types = set(str(params.get("types") or "public_channel").split(","))
        exclude_archived = _truthy(params.get("exclude_archived"))
        channels = [
            c
            for c in self.workspace.channels.values()
            if ("private_channel" if c.is_private else "public_channel") in types
            and not (exclude_archived and c.is_archived)
            # A private channel is visible only to its members, the bot included.
            and (not c.is_private or c.bot_member)
        ]
        page, cursor = _paginate(channels, params, default_limit=USERS_DEFAULT_LIMIT)
        return {
            "channels": [c.as_conversation() for c in page],
            "response_metadata": {"next_cursor": cursor},
        }

    def conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.readable_conversation(params.get("channel"))
        oldest = float(params.get("oldest") or 0)
        latest = float(params["latest"]) if params.get("latest") else float("inf")
        inclusive = _truthy(params.get("inclusive"))
        all_messages = self.messages.get(channel, [])
        replies: dict[str, int] = {}
        for m in all_messages:
            if m.thread_ts and m.thread_ts != m.ts:
                replies[m.thread_ts] = replies.get(m.thread_ts, 0) + 1
        top = [
            m
            for m in reversed(all_messages)
            if (not m.thread_ts or m.thread_ts == m.ts)
            and (oldest <= float(m.ts) <= latest if inclusive else oldest < float(m.ts) < latest)
        ]
        page, cursor = _paginate(top, params, default_limit=HISTORY_DEFAULT_LIMIT)
        with_metadata = _truthy(params.get("include_all_metadata"))
        return {
            "messages": [
                m.as_dict(with_metadata=with_metadata, reply_count=replies.get(m.ts, 0))
                for m in page
            ],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self.readable_conversation(params.get("channel"))
        ts = str(params.get("ts") or "")
        parent = self.find_message(channel, ts)
        thread = [parent] + [
            m for m in self.messages.get(channel, []) if m.thread_ts == ts and m.ts != ts
        ]
        page, cursor = _paginate(thread, params, default_limit=HISTORY_DEFAULT_LIMIT)
        with_metadata = _truthy(params.get("include_all_metadata"))
        return {
            "messages": [m.as_dict(with_metadata=with_metadata) for m in page],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        users = list(self.workspace.users.values())
        page, cursor = _paginate(users, params, default_limit=USERS_DEFAULT_LIMIT)
        return {
            "members": [u.as_member(self.workspace.team_id) for u in page],
            "response_metadata": {"next_cursor": cursor},
        }

    def users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"user": self._user(params.get("user")).as_member(self.workspace.team_id)}

    def users_lookup_by_email(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.workspace.user_by_email(str(params.get("email") or ""))
        if user is None:
            raise ApiError("users_not_found")
        return {"user": user.as_member(self.workspace.team_id)}

    def _take_trigger(self, params: dict[str, Any]) -> None:
        trigger = str(params.get("trigger_id") or "")
        issued = self.triggers.pop(trigger, None)
        if issued is None:
            raise ApiError("invalid_trigger_id")
        if time.monotonic() - issued[0] > self.trigger_ttl:
            raise ApiError("expired_trigger_id")

    def _checked_view(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        try:
            view = parse_json_param(params.get("view"), what="view")
            check_view(view, kind=kind)
        except Invalid as exc:
            raise ApiError("invalid_arguments", f"[ERROR] {exc}") from None
        return dict(view)

    def _store_view(self, view: dict[str, Any], *, root: str | None = None) -> dict[str, Any]:
        stored = StoredView(id=self.next_id("V"), view=view, hash=self.next_ts(), root_id=root)
        self.views[stored.id] = stored
        return self._view_dict(stored)

    def _view_dict(self, stored: StoredView) -> dict[str, Any]:
        ws = self.workspace
        return stored.as_dict(ws.team_id, ws.app_id, ws.bot_id)

    def views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(params, "modal")
        self._take_trigger(params)
        return {"view": self._store_view(view)}

    def views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(params, "modal")
        self._take_trigger(params)
        return {"view": self._store_view(view)}

    def views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._checked_view(params, "modal")
        view_id = params.get("view_id")
        external_id = params.get("external_id")
        if view_id:
            stored = self.views.get(str(view_id))
        else:
            stored = next(
                (
                    v
                    for v in self.views.values()
                    if external_id and v.view.get("external_id") == external_id
                ),
                None,
            )
        if stored is None:
            raise ApiError("not_found")
        if params.get("hash") and params["hash"] != stored.hash:
            raise ApiError("hash_conflict")
        stored.view = view
        stored.hash = self.next_ts()
        return {"view": self._view_dict(stored)}

    def views_publish(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params.get("user_id"))
        if user.deleted:
            raise ApiError("user_not_found")
        view = self._checked_view(params, "home")
        stored = self.homes.get(user.id)
        if stored is not None and params.get("hash") and params["hash"] != stored.hash:
            raise ApiError("hash_conflict")
        if stored is None:
            stored = StoredView(id=self.next_id("V"), view=view, hash="", user=user.id)
            self.homes[user.id] = stored
        stored.view = view
        stored.hash = self.next_ts()
        return {"view": self._view_dict(stored)}

    def files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = str(params.get("filename") or "")
        try:
            length = int(params.get("length") or 0)
        except ValueError:
            raise ApiError("invalid_arguments", "[ERROR] length must be an integer") from None
        if not filename or length <= 0:
            raise ApiError("invalid_arguments", "[ERROR] filename and length are required")
        uploaded = UploadedFile(id=self.next_id("F"), filename=filename, length=length)
        self.files[uploaded.id] = uploaded
        return {"file_id": uploaded.id, "upload_url": f"{self._base_url()}upload/{uploaded.id}"}

    def files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        """Step 3: every file must have had its URL issued and its bytes received, once.

        The conversation is checked as chat.postMessage checks it (not_in_channel,
        channel_not_found...) before anything is marked complete, so a refused completion
        leaves nothing shared.
        """
        try:
            files = parse_json_param(params.get("files"), what="files")
        except Invalid as exc:
            raise ApiError("invalid_arguments", f"[ERROR] {exc}") from None
        if not isinstance(files, list) or not files:
            raise ApiError("invalid_arguments", "[ERROR] files must be a non-empty array")
        wanted = []
        for item in files:
            uploaded = self.files.get(str((item or {}).get("id") if isinstance(item, dict) else ""))
            if uploaded is None or uploaded.completed:
                raise ApiError("file_not_found")
            if uploaded.content is None:
                raise ApiError("file_upload_not_complete")
            wanted.append((uploaded, str(item.get("title") or uploaded.filename)))
        channel = (
            self.conversation_for_post(params["channel_id"]) if params.get("channel_id") else None
        )
        thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
        if channel is not None and thread_ts is not None:
            self.find_message(channel, thread_ts)  # a thread must have a parent: message_not_found
        shared = []
        for uploaded, title in wanted:
            uploaded.title, uploaded.completed = title, True
            shared.append({"id": uploaded.id, "name": uploaded.filename, "title": uploaded.title})
        if channel is not None:
            message = Message(
                channel=channel,
                ts=self.next_ts(),
                text=str(params.get("initial_comment") or ""),
                user=self.workspace.bot_user_id,
                thread_ts=thread_ts,
                files=shared,
            )
            self.messages.setdefault(channel, []).append(message)
            for uploaded, _ in wanted:
                uploaded.channel, uploaded.thread_ts = channel, thread_ts
                uploaded.initial_comment, uploaded.message_ts = message.text, message.ts
        return {"files": shared}

    def receive_upload(self, file_id: str, content: bytes) -> str | None:
        """Step 2, the POST of the bytes to the upload URL: None when taken, else why it was refused."""
        uploaded = self.files.get(file_id)
        if uploaded is None:
            return "file_not_found"
        if uploaded.completed:
            return "already_completed"
        if len(content) != uploaded.length:
            return "length_mismatch"
        uploaded.content = content
        return None

    def apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"{self._base_url().replace('http://', 'ws://')}socket-mode"}


# Web API method name -> (implementation, which token it needs)
METHODS: dict[str, tuple[Callable[[SlackState, dict[str, Any]], dict[str, Any]], str]] = {
    "auth.test": (SlackState.auth_test, "bot"),
    "chat.postMessage": (SlackState.chat_post_message, "bot"),
    "chat.update": (SlackState.chat_update, "bot"),
    "chat.delete": (SlackState.chat_delete, "bot"),
    "chat.getPermalink": (SlackState.chat_get_permalink, "bot"),
    "chat.postEphemeral": (SlackState.chat_post_ephemeral, "bot"),
    "conversations.open": (SlackState.conversations_open, "bot"),
    "conversations.info": (SlackState.conversations_info, "bot"),
    "conversations.list": (SlackState.conversations_list, "bot"),
    "conversations.history": (SlackState.conversations_history, "bot"),
    "conversations.replies": (SlackState.conversations_replies, "bot"),
    "users.list": (SlackState.users_list, "bot"),
    "users.info": (SlackState.users_info, "bot"),
    "users.lookupByEmail": (SlackState.users_lookup_by_email, "bot"),
    "views.open": (SlackState.views_open, "bot"),
    "views.push": (SlackState.views_push, "bot"),
    "views.update": (SlackState.views_update, "bot"),
    "views.publish": (SlackState.views_publish, "bot"),
    "files.getUploadURLExternal": (SlackState.files_get_upload_url_external, "bot"),
    "files.completeUploadExternal": (SlackState.files_complete_upload_external, "bot"),
    "apps.connections.open": (SlackState.apps_connections_open, "app"),
}

# Slack's rate-limit tier of each method (https://docs.slack.dev/apis/web-api/rate-limits):
# Tier 1 about 1/min, Tier 2 20+/min, Tier 3 50+/min, Tier 4 100+/min; "special" methods have
# limits of their own (chat.postMessage: about 1 message per second per channel).
METHOD_TIERS: dict[str, str] = {
    "auth.test": "special",
    "chat.postMessage": "special",
    "chat.update": "3",
    "chat.delete": "3",
    "chat.getPermalink": "special",
    "chat.postEphemeral": "4",
    "conversations.open": "3",
    "conversations.info": "3",
    "conversations.list": "2",
    "conversations.history": "3",
    "conversations.replies": "3",
    "users.list": "2",
    "users.info": "4",
    "users.lookupByEmail": "3",
    "views.open": "4",
    "views.push": "4",
    "views.update": "4",
    "views.publish": "4",
    "files.getUploadURLExternal": "4",
    "files.completeUploadExternal": "4",
    "apps.connections.open": "1",
}


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true", "yes")


def _paginate(
    items: list[Any], params: dict[str, Any], *, default_limit: int
) -> tuple[list[Any], str]:
    """Slack-style cursor pagination: an opaque cursor, empty when there is no next page."""
    try:
        limit = int(params.get("limit") or 0) or default_limit
        start = int(str(params.get("cursor") or "offset:0").removeprefix("offset:"))
    except ValueError:
        raise ApiError("invalid_cursor") from None
    page = items[start : start + limit]
    more = start + limit < len(items)
    return page, f"offset:{start + limit}" if more else ""
