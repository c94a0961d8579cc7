"""The only module that calls the Slack Web API: retries, error classification and small typed results.

Everything above this module sees dataclasses and `bot.slack.errors` exceptions, never a
`SlackResponse`. The bot's own posts can carry a `MessageTag` (Slack message `metadata`), so a
post can be found again with `find_tagged_messages` after a crash or a lost database write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.client import RemoteDisconnected
from typing import Any
from urllib.error import URLError
from urllib.parse import urlsplit

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from bot.clock import utcnow
from bot.slack.credentials import TOKEN_REFUSALS, SlackCredentials
from bot.slack.errors import AccountInactive, InvalidAuth, SlackError, SlackUnavailable, classify

log = logging.getLogger(__name__)

# Every Web API method this module calls, with the bot scopes it needs. The manifest's scopes are
# derived from this table and a test greps this file for `client.<method>(` so it cannot drift.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "auth.test": (),
    "chat.postMessage": ("chat:write",),
    "chat.update": ("chat:write",),
    "chat.getPermalink": (),  # needs no scope of its own
    "chat.postEphemeral": ("chat:write",),
    "views.open": (),
    "views.update": (),
    "views.push": (),
    "views.publish": (),
    "users.list": ("users:read", "users:read.email"),
    "users.lookupByEmail": ("users:read.email",),
    "conversations.list": ("channels:read", "groups:read"),
    # Only crash recovery needs a DM's D… ID before any post to it has told us (posts use U…).
    "conversations.open": ("im:write",),
    # The bot re-reads its own tagged posts in channels, private channels and DMs.
    "conversations.history": ("channels:history", "groups:history", "im:history"),
    # A thread reply (a poll's outcome) is not in the channel's history: it is read from its thread.
    "conversations.replies": ("channels:history", "groups:history"),
    # Slack's upload flow (what `files_upload_v2` calls): a URL, the bytes posted there, then
    # the completion that shares the file in a conversation.
    "files.getUploadURLExternal": ("files:write",),
    "files.completeUploadExternal": ("files:write",),
}
# slack_sdk helpers that call several Web API methods: the manifest test counts these too.
CLIENT_HELPERS: dict[str, tuple[str, ...]] = {
    "files_upload_v2": ("files.getUploadURLExternal", "files.completeUploadExternal"),
}

HISTORY_PAGE = 200
DIRECTORY_PAGE = 200


@dataclass(frozen=True)
class MessageTag:
    """What a bot post is about (Slack message `metadata`): e.g. `planpulse_alert`, {"alert_id": 7}."""

    event_type: str
    payload: dict[str, Any] = field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {"event_type": self.event_type, "event_payload": self.payload}


@dataclass(frozen=True)
class PostedMessage:
    channel: str  # the real conversation ID (a `D…` for a DM posted by user ID)
    ts: str


@dataclass(frozen=True)
class SlackUser:
    id: str
    name: str
    real_name: str
    email: str | None
    tz: str | None
    deleted: bool
    is_bot: bool


@dataclass(frozen=True)
class SlackChannel:
    id: str
    name: str
    is_member: bool
    is_private: bool = False
    is_archived: bool = False


@dataclass(frozen=True)
class TaggedMessage:
    ts: str
    payload: dict[str, Any]
    text: str = ""


@dataclass(frozen=True)
class BotIdentity:
    user_id: str
    bot_id: str | None
    team_id: str | None
    team: str | None


# Methods that do something each time they are called: sent twice, a message is posted twice.
NOT_IDEMPOTENT = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "files.completeUploadExternal"}
)


class ConnectionRetryHandler(ConnectionErrorRetryHandler):
    """Retries a connection that failed before the request was sent (urllib raises `URLError`);
    a connection dropped after it was sent is retried only where a repeat does no harm.

    A reset or a close while waiting for the answer (`ConnectionResetError`,
    `RemoteDisconnected`) means Slack may have done it: a post retried then would be posted
    twice. Such a post fails as `SlackUnavailable` and its caller finds it again by its tag.
    """

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not isinstance(error, URLError) and _api_method(request.url) in NOT_IDEMPOTENT:
            return False
        return super()._can_retry(state=state, request=request, response=response, error=error)


def _api_method(url: str) -> str:
    return urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]


def retry_handlers() -> list[RetryHandler]:
    """429s honour Retry-After; dropped connections and 500/503 are retried a bounded number of times."""
    return [
        RateLimitErrorRetryHandler(max_retry_count=3),
        # Connection failures only: a read timeout is not retried, because the post may have
        # landed (a tagged post can be found again instead of being sent twice).
        ConnectionRetryHandler(
            max_retry_count=2, error_types=[URLError, ConnectionResetError, RemoteDisconnected]
        ),
        ServerErrorRetryHandler(max_retry_count=2),
    ]


def make_web_client(*, token: str | None, base_url: str, timeout: int = 10) -> WebClient:
    """The WebClient shared by the gateway and Bolt (Bolt's own `say`/`respond` go through it too)."""
    return WebClient(
        token=token, base_url=base_url, timeout=timeout, retry_handlers=retry_handlers()
    )


Origin = tuple[str, str, int]  # scheme, host, port: what a response_url may point at

SLACK_HOOKS: Origin = ("https", "hooks.slack.com", 443)


def url_origin(url: str) -> Origin | None:
    """(scheme, lower-case host, port) of an http(s) URL; None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, an unbalanced IPv6 bracket
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or (443 if scheme == "https" else 80)


def response_url_origins(api_url: str) -> frozenset[Origin]:
    """Where Slack's response_urls live: hooks.slack.com, and SLACK_API_URL's own host (a stand-in),
    and its `hooks.` host (GovSlack: https://slack-gov.com/api/ answers on hooks.slack-gov.com)."""
    origins = {SLACK_HOOKS}
    api = url_origin(api_url)
    if api is not None:
        origins.add(api)
        scheme, host, port = api
        if scheme == "https":
            origins.add((scheme, f"hooks.{host.removeprefix('www.')}", port))
    return frozenset(origins)


class SlackGateway:
    """Typed wrapper around one WebClient; every call raises a `SlackError` subclass on failure.

    Once Slack refuses the token (`credentials.revoked`), every call raises `InvalidAuth` without
    a request: a revoked token stays revoked, and Slack is not asked again until a restart.
    """

    def __init__(
        self,
        client: WebClient,
        *,
        credentials: SlackCredentials | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.client = client
        self.credentials = credentials or SlackCredentials()
        self._clock = clock  # read only to stamp a revocation
        # A response_url comes inside the request: only Slack's own hosts may be posted to, or
        # a payload could make the bot POST to an internal service of the sender's choosing.
        self.response_url_origins = response_url_origins(client.base_url)

    @classmethod
    def from_settings(cls, settings: Any) -> SlackGateway:
        token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
        return cls(make_web_client(token=token, base_url=settings.slack_api_url))

    # --- plumbing -----------------------------------------------------------------------------

    def _call(self, method: str, call: Callable[[], SlackResponse]) -> dict[str, Any]:
        revoked = self.credentials.revoked
        if revoked is not None:
            raise InvalidAuth(revoked.code, method=method)
        try:
            response = call()
        except SlackApiError as exc:
            status = exc.response.status_code if exc.response is not None else None
            code = _error_code(exc)
            error = classify(code, method=method, status=status)
            if isinstance(error, InvalidAuth) or (
                isinstance(error, AccountInactive) and self._token_refused(method)
            ):
                self.credentials.revoke(code=code, method=method, at=self._clock())
                raise InvalidAuth(code, method=method, status=status) from None
            raise error from None
        except (URLError, OSError, SlackRequestError) as exc:
            # Connection refused, timeouts, resets that outlasted the retries. urllib raises
            # URLError until the request is sent; after that (waiting for the answer) the raw
            # error, and the call may have taken effect.
            raise SlackUnavailable(
                type(exc).__name__,
                method=method,
                maybe_delivered=isinstance(exc, OSError) and not isinstance(exc, URLError),
            ) from None
        data = response.data
        if not isinstance(data, dict):
            raise SlackError("bad_body", method=method, status=response.status_code)
        return data

    def _token_refused(self, method: str) -> bool:
        """Whether an `account_inactive` is about the token (its bot or workspace was deleted)
        rather than the user posted to: auth.test, which names no user, tells them apart."""
        if method == "auth.test":
            return True
        try:
            self.client.auth_test()
        except SlackApiError as exc:
            return _error_code(exc) in TOKEN_REFUSALS
        except (URLError, OSError, SlackRequestError):
            return False  # cannot tell now: the user's error stands, the next call asks again
        return False

    def _pages(
        self, method: str, call: Callable[[str | None], SlackResponse]
    ) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            data = self._call(method, lambda c=cursor: call(c))  # type: ignore[misc]
            yield data
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return

    # --- identity -----------------------------------------------------------------------------

    def auth_test(self) -> BotIdentity:
        data = self._call("auth.test", lambda: self.client.auth_test())
        return BotIdentity(
            user_id=str(data.get("user_id", "")),
            bot_id=data.get("bot_id"),
            team_id=data.get("team_id"),
            team=data.get("team"),
        )

    # --- messages -----------------------------------------------------------------------------

    def post_message(
        self,
        *,
        channel: str,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        tag: MessageTag | None = None,
    ) -> PostedMessage:
        """Post to a channel ID, or to a user ID (Slack delivers it to the app's DM with them).

        `broadcast` sends a thread reply to the channel too (an outcome everyone should see).
        """
        kwargs: dict[str, Any] = {"channel": channel, "text": text}
        if blocks is not None:
            kwargs["blocks"] = list(blocks)
        if thread_ts is not None:
            kwargs["thread_ts"] = thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        if tag is not None:
            kwargs["metadata"] = tag.as_metadata()
        data = self._call("chat.postMessage", lambda: self.client.chat_postMessage(**kwargs))
        return PostedMessage(channel=str(data["channel"]), ts=str(data["ts"]))

    def update_message(
        self,
        *,
        channel: str,
        ts: str,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        tag: MessageTag | None = None,
    ) -> PostedMessage:
        kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
        kwargs["blocks"] = list(blocks) if blocks is not None else []
        if tag is not None:
            kwargs["metadata"] = tag.as_metadata()
        data = self._call("chat.update", lambda: self.client.chat_update(**kwargs))
        return PostedMessage(channel=str(data.get("channel", channel)), ts=str(data.get("ts", ts)))

    def permalink(self, *, channel: str, ts: str) -> str:
        """A link to a message (chat.getPermalink), for alerts that point at another message."""
        data = self._call(
            "chat.getPermalink",
            lambda: self.client.chat_getPermalink(channel=channel, message_ts=ts),
        )
        return str(data["permalink"])

    def post_ephemeral(
        self,
        *,
        channel: str,
        user: str,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {"channel": channel, "user": user, "text": text}
        if blocks is not None:
            kwargs["blocks"] = list(blocks)
        if thread_ts is not None:
            kwargs["thread_ts"] = thread_ts
        self._call("chat.postEphemeral", lambda: self.client.chat_postEphemeral(**kwargs))

    def respond(
        self,
        response_url: str,
        *,
        text: str,
        blocks: Sequence[Mapping[str, Any]] | None = None,
        response_type: str = "ephemeral",
        replace_original: bool = False,
        delete_original: bool = False,
    ) -> None:
        """Answer through an interaction's `response_url` (5 uses in 30 minutes; needs no scope).

        A URL on any host but Slack's (`response_url_origins`) is dropped with a warning: no
        request is made.
        """
        origin = url_origin(response_url)
        if origin not in self.response_url_origins:
            log.warning(
                "dropped an answer to a response_url outside Slack (%s)",
                f"{origin[0]}://{origin[1]}:{origin[2]}" if origin else "not an http(s) URL",
            )
            return
        webhook = WebhookClient(
            response_url, timeout=self.client.timeout, retry_handlers=retry_handlers()
        )
        try:
            response = webhook.send(
                text=text,
                blocks=[dict(b) for b in blocks] if blocks is not None else None,
                response_type=response_type,
                replace_original=replace_original,
                delete_original=delete_original,
            )
        except (URLError, OSError) as exc:
            raise SlackUnavailable(type(exc).__name__, method="response_url") from None
        if response.status_code >= 500:
            raise SlackUnavailable(response.body or "server_error", method="response_url")
        if response.status_code != 200:
            raise SlackError(
                response.body or "expired_url", method="response_url", status=response.status_code
            )

    def upload_file(
        self,
        *,
        channel: str,
        filename: str,
        content: bytes,
        title: str,
        initial_comment: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """Share a file in a conversation (a `C…`/`G…`/`D…` ID), in a thread when `thread_ts` is given.

        slack_sdk's `files_upload_v2`: files.getUploadURLExternal, a POST of the bytes to the URL
        it returns, files.completeUploadExternal. A refusal of the conversation (not_in_channel,
        channel_not_found) comes from the last step. Returns the file's ID.
        """
        kwargs: dict[str, Any] = {
            "channel": channel,
            "filename": filename,
            "content": content,
            "title": title,
        }
        if initial_comment is not None:
            kwargs["initial_comment"] = initial_comment
        if thread_ts is not None:
            kwargs["thread_ts"] = thread_ts
        data = self._call(
            "files.completeUploadExternal", lambda: self.client.files_upload_v2(**kwargs)
        )
        return str((data.get("files") or [{}])[0].get("id", ""))

    def open_dm(self, user_id: str) -> str:
        """The ID (`D…`) of the app's DM with a user, opening it if needed."""
        data = self._call(
            "conversations.open", lambda: self.client.conversations_open(users=user_id)
        )
        return str(data["channel"]["id"])

    def find_tagged_messages(
        self, *, channel: str, event_type: str, oldest: datetime | None = None
    ) -> list[TaggedMessage]:
        """The bot's posts in `channel` tagged with `event_type`, newest first."""
        oldest_ts = f"{oldest.timestamp():.6f}" if oldest is not None else None

        def page(cursor: str | None) -> SlackResponse:
            kwargs: dict[str, Any] = {
                "channel": channel,
                "include_all_metadata": True,
                "limit": HISTORY_PAGE,
            }
            if oldest_ts is not None:
                kwargs["oldest"] = oldest_ts
            if cursor:
                kwargs["cursor"] = cursor
            return self.client.conversations_history(**kwargs)

        found = []
        for data in self._pages("conversations.history", page):
            for message in data.get("messages") or []:
                metadata = message.get("metadata") or {}
                if metadata.get("event_type") == event_type:
                    found.append(
                        TaggedMessage(
                            ts=str(message["ts"]),
                            payload=dict(metadata.get("event_payload") or {}),
                            text=str(message.get("text", "")),
                        )
                    )
        return found

    def find_tagged_replies(
        self, *, channel: str, thread_ts: str, event_type: str
    ) -> list[TaggedMessage]:
        """The bot's replies in the thread of `thread_ts` tagged with `event_type`, oldest first."""

        def page(cursor: str | None) -> SlackResponse:
            kwargs: dict[str, Any] = {
                "channel": channel,
                "ts": thread_ts,
                "include_all_metadata": True,
                "limit": HISTORY_PAGE,
            }
            if cursor:
                kwargs["cursor"] = cursor
            return self.client.conversations_replies(**kwargs)

        found = []
        for data in self._pages("conversations.replies", page):
            for message in data.get("messages") or []:
                metadata = message.get("metadata") or {}
                if message.get("ts") != thread_ts and metadata.get("event_type") == event_type:
                    found.append(
                        TaggedMessage(
                            ts=str(message["ts"]),
                            payload=dict(metadata.get("event_payload") or {}),
                            text=str(message.get("text", "")),
                        )
                    )
        return found

    # --- views --------------------------------------------------------------------------------

    def open_view(self, *, trigger_id: str, view: Mapping[str, Any]) -> str:
        """Open a modal (the trigger_id lives 3 s: call this right after ack) and return its view ID."""
        data = self._call(
            "views.open", lambda: self.client.views_open(trigger_id=trigger_id, view=dict(view))
        )
        return str(data["view"]["id"])

    def push_view(self, *, trigger_id: str, view: Mapping[str, Any]) -> str:
        data = self._call(
            "views.push", lambda: self.client.views_push(trigger_id=trigger_id, view=dict(view))
        )
        return str(data["view"]["id"])

    def update_view(self, *, view_id: str, view: Mapping[str, Any], hash: str | None = None) -> str:
        """Replace an open modal; with `hash`, Slack refuses (`hash_conflict`) if it changed meanwhile."""
        kwargs: dict[str, Any] = {"view_id": view_id, "view": dict(view)}
        if hash is not None:
            kwargs["hash"] = hash
        data = self._call("views.update", lambda: self.client.views_update(**kwargs))
        return str(data["view"]["id"])

    def publish_home(self, *, user_id: str, view: Mapping[str, Any]) -> None:
        self._call(
            "views.publish", lambda: self.client.views_publish(user_id=user_id, view=dict(view))
        )

    # --- directory ----------------------------------------------------------------------------

    def list_users(self) -> list[SlackUser]:
        """Every member of the workspace from one paginated users.list (Tier 2: call it rarely)."""
        users: list[SlackUser] = []
        for data in self._pages(
            "users.list",
            lambda cursor: self.client.users_list(limit=DIRECTORY_PAGE, cursor=cursor),
        ):
            users.extend(_user(member) for member in data.get("members") or [])
        return users

    def lookup_user_by_email(self, email: str) -> SlackUser:
        data = self._call(
            "users.lookupByEmail", lambda: self.client.users_lookupByEmail(email=email)
        )
        return _user(data["user"])

    def list_channels(self, *, include_archived: bool = False) -> list[SlackChannel]:
        """Public channels, and the private ones the bot is in (archived ones only when asked)."""
        channels = []
        for data in self._pages(
            "conversations.list",
            lambda cursor: self.client.conversations_list(
                types="public_channel,private_channel",
                exclude_archived=not include_archived,
                limit=DIRECTORY_PAGE,
                cursor=cursor,
            ),
        ):
            for channel in data.get("channels") or []:
                channels.append(
                    SlackChannel(
                        id=str(channel["id"]),
                        name=str(channel.get("name", "")),
                        is_member=bool(channel.get("is_member", False)),
                        is_private=bool(channel.get("is_private", False)),
                        is_archived=bool(channel.get("is_archived", False)),
                    )
                )
        return channels


def _error_code(exc: SlackApiError) -> str:
    data = exc.response.data if exc.response is not None else None
    return str(data.get("error", "unknown_error")) if isinstance(data, dict) else "bad_body"


def _user(member: Mapping[str, Any]) -> SlackUser:
    profile = member.get("profile") or {}
    return SlackUser(
        id=str(member["id"]),
        name=str(member.get("name", "")),
        real_name=str(
            member.get("real_name") or profile.get("real_name") or member.get("name", "")
        ),
        email=profile.get("email") or None,
        tz=member.get("tz") or None,
        deleted=bool(member.get("deleted", False)),
        is_bot=bool(member.get("is_bot", False)) or member.get("id") == "USLACKBOT",
    )
