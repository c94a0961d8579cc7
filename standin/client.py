"""Acting as Slack towards a bot: commands, interactions and events, built and signed as Slack does.

slack = SlackSide(standin, signing_secret="...")
request = slack.command("/kpi", "portal", user_id="UALICE")
reply = send(bot_url, request)                       # stdlib HTTP: status, JSON or text body
payload = slack.block_action_payload("pulse_on_track", "7", user_id="UALICE", channel_id="UALICE")
send(bot_url, slack.interaction(payload))

Payloads carry what Slack puts in them (team, user, channel, a fresh response_url and trigger_id
issued by the stand-in), so the bot cannot tell them from the real thing. The test harness sends
the same requests with httpx; the demo with `send`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from standin.server import StandIn

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def sign(body: str, *, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The two headers Slack adds to every request: v0 HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


@dataclass(frozen=True)
class SlackRequest:
    """One request as Slack would POST it to the app's Request URL (not yet signed)."""

    body: str
    content_type: str = FORM
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BotReply:
    """The bot's HTTP answer (the ack): status and body, parsed when it is JSON."""

    status: int
    text: str

    def json(self) -> Any:
        return json.loads(self.text)


def send(
    base_url: str, request: SlackRequest, *, headers: dict[str, str], timeout: float = 10
) -> BotReply:
    """POST a signed request to the bot's `/slack/events` with the standard library."""
    http = urllib.request.Request(  # noqa: S310 - the URL is the bot we just started, over http
        f"{base_url.rstrip('/')}/slack/events",
        data=request.body.encode(),
        headers={"Content-Type": request.content_type, **request.headers, **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout) as answer:  # noqa: S310
            return BotReply(answer.status, answer.read().decode())
    except urllib.error.HTTPError as error:
        return BotReply(error.code, error.read().decode(errors="replace"))


class SlackSide:
    """Slack's side of a conversation with a bot, in the stand-in's workspace."""

    _views = itertools.count(1)

    def __init__(self, standin: StandIn, *, signing_secret: str) -> None:
        self.standin = standin
        self.signing_secret = signing_secret
        ws = standin.workspace
        self.team = {"id": ws.team_id, "domain": ws.domain}
        self.api_app_id = ws.app_id

    def signed(self, request: SlackRequest, *, timestamp: int | None = None) -> dict[str, str]:
        """The signature headers for `request`, made with this app's signing secret."""
        return sign(request.body, secret=self.signing_secret, timestamp=timestamp)

    def send(self, base_url: str, request: SlackRequest) -> BotReply:
        return send(base_url, request, headers=self.signed(request))

    # --- what Slack sends ---------------------------------------------------------------------

    def command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str,
        channel_id: str = "CGENERAL",
        **extra: str,
    ) -> SlackRequest:
        """A slash command invocation, as the form Slack posts."""
        channel = self.standin.workspace.channels.get(channel_id)
        user = self.standin.workspace.users.get(user_id)
        form = {
            "token": "legacy-verification-token",
            "team_id": self.team["id"],
            "team_domain": self.team["domain"],
            "channel_id": channel_id,
            "channel_name": channel.name if channel else "directmessage",
            "user_id": user_id,
            "user_name": user.name if user else "someone",
            "command": command,
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": self.standin.new_response_url(user_id=user_id, channel_id=channel_id),
            "trigger_id": self.standin.issue_trigger(user_id),
            **extra,
        }
        return SlackRequest(urlencode(form))

    def interaction(self, payload: dict[str, Any]) -> SlackRequest:
        """A block action, view submission or shortcut: the JSON payload in a `payload` field."""
        return SlackRequest(urlencode({"payload": json.dumps(payload)}))

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
    ) -> SlackRequest:
        """An Events API envelope; `retry_num` adds the headers of Slack's retries."""
        envelope = {
            "token": "legacy-verification-token",
            "team_id": self.team["id"],
            "api_app_id": self.api_app_id,
            "event": {"event_ts": f"{time.time():.6f}", **event},
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:12].upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "team_id": self.team["id"],
                    "user_id": self.standin.workspace.bot_user_id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
        }
        headers = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        return SlackRequest(json.dumps(envelope), JSON, headers)

    def app_home_opened(self, user_id: str, *, event_id: str | None = None) -> SlackRequest:
        dm = self.standin.dm_channel(user_id)
        return self.event(
            {"type": "app_home_opened", "user": user_id, "channel": dm, "tab": "home"},
            event_id=event_id,
        )

    # --- payload builders ---------------------------------------------------------------------

    def user(self, user_id: str) -> dict[str, Any]:
        user = self.standin.workspace.users.get(user_id)
        name = user.name if user else "someone"
        return {"id": user_id, "username": name, "name": name, "team_id": self.team["id"]}

    def block_action_payload(
        self,
        action_id: str,
        value: str | None = None,
        *,
        user_id: str,
        channel_id: str | None = None,
        block_id: str = "b",
        message: dict[str, Any] | None = None,
        view: dict[str, Any] | None = None,
        action: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A `block_actions` payload for a button (or, with `action`, any element) press.

        From a message when `channel_id` is given (the message defaults to the bot's last post
        there; a user ID means the DM), from a view (modal or Home) when `view` is given.
        """
        act = action or {"type": "button", "text": {"type": "plain_text", "text": "Button"}}
        act = {
            "action_id": action_id,
            "block_id": block_id,
            "action_ts": f"{time.time():.6f}",
            **({"value": value} if value is not None else {}),
            **act,
        }
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self.user(user_id),
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "team": self.team,
            "enterprise": None,
            "is_enterprise_install": False,
            "trigger_id": self.standin.issue_trigger(user_id),
            "actions": [act],
        }
        if channel_id is not None:
            payload.update(self._message_container(user_id, channel_id, message))
        if view is not None:
            payload.update(
                container={"type": "view", "view_id": view.get("id", "V0")},
                view=view,
            )
        return payload

    def _message_container(
        self, user_id: str, channel_id: str, message: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The fields of a click on a message: container, channel, message and response_url."""
        conversation = channel_id
        if channel_id[:1] in "UW":
            conversation = self.standin.dm_channel(channel_id)
        if message is None:
            posted = self.standin.messages(conversation)
            message = posted[-1].as_dict(with_metadata=True) if posted else None
        ts = (message or {}).get("ts") or f"{time.time():.6f}"
        is_posted = any(m.ts == ts for m in self.standin.messages(conversation))
        channel = self.standin.workspace.channels.get(conversation)
        return {
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": conversation,
                "is_ephemeral": not is_posted,
            },
            "channel": {"id": conversation, "name": channel.name if channel else "directmessage"},
            "message": message or {"type": "message", "ts": ts, "text": "", "blocks": []},
            "response_url": self.standin.new_response_url(
                user_id=user_id,
                channel_id=conversation,
                message_ts=ts if is_posted else None,
            ),
        }

    def view_submission_payload(
        self,
        callback_id: str,
        values: dict[str, dict[str, dict[str, Any]]],
        *,
        user_id: str,
        private_metadata: str = "",
        view_id: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """A `view_submission` payload; `blocks` defaults to the stored view when `view_id` names one."""
        stored = self.standin.view(view_id) if view_id else None
        view = {
            "id": view_id or f"V{next(self._views):08d}",
            "team_id": self.team["id"],
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": private_metadata,
            "blocks": blocks if blocks is not None else (stored or {}).get("blocks", []),
            "title": (stored or {}).get("title", {"type": "plain_text", "text": "PlanPulse"}),
            "state": {"values": values},
            "hash": f"{time.time():.6f}",
            "app_id": self.api_app_id,
            "bot_id": self.standin.workspace.bot_id,
        }
        return {
            "type": "view_submission",
            "team": self.team,
            "user": self.user(user_id),
            "api_app_id": self.api_app_id,
            "token": "legacy-verification-token",
            "trigger_id": self.standin.issue_trigger(user_id),
            "view": view,
            "response_urls": [],
            "is_enterprise_install": False,
        }
