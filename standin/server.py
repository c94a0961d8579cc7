"""The stand-in's HTTP server: `/api/<method>` like slack.com, `response_url` endpoints, call records.

standin = StandIn(Workspace.default()).start()
client = WebClient(token="xoxb-test", base_url=standin.api_url)
...
standin.wait_for("chat.postMessage", count=1)      # the Call records, once there are enough
standin.fail_next("users.list", status=429, retry_after=1)
standin.rate_limit_tier("3", retry_after=1)           # the next Tier 3 call, whatever its method
standin.drop_next("chat.postMessage", landed=True)   # posted, then the connection is reset
standin.revoke_token()                              # every call with the token: token_revoked
standin.stop()
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from standin.api import (
    METHOD_TIERS,
    METHODS,
    ApiError,
    Ephemeral,
    Message,
    SlackState,
    UploadedFile,
)
from standin.socket_mode import SocketModeConnection, accept_key
from standin.validation import Invalid, check_blocks
from standin.workspace import Workspace

RESPONSE_URL_USES = 5
RESPONSE_URL_LIFETIME = 30 * 60


@dataclass(frozen=True)
class Call:
    """One request the stand-in answered: `method` is a Web API name or `response_url`."""

    method: str
    params: dict[str, Any]
    at: float
    ok: bool
    error: str | None = None
    response: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Failure:
    error: str
    status: int
    retry_after: int | None
    times: int
    delay: float


class Dropped(Exception):
    """The call's connection is to be reset without an answer (`StandIn.drop_next`)."""


@dataclass
class _ResponseUrl:
    id: str
    user: str
    channel: str
    created: float
    message_ts: str | None = None  # the bot message the interaction came from, if any
    uses: int = 0


class StandIn:
    """A running fake Slack: thread-safe, records every call, can be told to fail."""

    def __init__(
        self, workspace: Workspace | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.workspace = workspace or Workspace.default()
        self.state = SlackState(self.workspace, base_url=lambda: self.url)
        self._host = host
        self._port = port
        self._calls: list[Call] = []
        self._changed = threading.Condition(self.state.lock)
        self._failures: dict[str, list[_Failure]] = {}
        self._random_429: tuple[random.Random, float] | None = None  # (generator, share of calls)
        self._delays: dict[str, list[tuple[float, bool]]] = {}  # (seconds, after the work)
        self._tier_failures: dict[str, list[_Failure]] = {}
        self._drops: dict[str, list[bool]] = {}  # method -> [landed?] per dropped call
        self._revoked_tokens: dict[str, str] = {}  # token -> the error every call with it gets
        self._rate_limits: dict[str, float] = {}  # method -> seconds between posts per channel
        self._last_post: dict[tuple[str, str], float] = {}
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._sockets: list[SocketModeConnection] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> StandIn:
        handler = type("_BoundHandler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer((self._host, self._port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        for connection in self.socket_connections():
            connection.close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the stand-in first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/"

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL must be set to."""
        return f"{self.url}api/"

    # --- what tests and the harness use -------------------------------------------------------

    def calls(self, method: str | None = None) -> list[Call]:
        with self._changed:
            return [c for c in self._calls if method is None or c.method == method]

    def reset_calls(self) -> None:
        with self._changed:
            self._calls.clear()

    def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 5.0,
        *,
        where: Callable[[Call], bool] | None = None,
    ) -> list[Call]:
        """Block until at least `count` calls of `method` (matching `where`) were answered.

        Condition.wait_for keeps its own clock, which freezegun leaves alone (it ignores the
        threading module), so a frozen test clock cannot turn this into an endless wait.
        """

        def matching() -> list[Call]:
            return [c for c in self._calls if c.method == method and (where is None or where(c))]

        with self._changed:
            if self._changed.wait_for(lambda: len(matching()) >= count, timeout):
                return matching()
            seen = ", ".join(f"{c.method}{'' if c.ok else '!' + str(c.error)}" for c in self._calls)
            raise AssertionError(
                f"waited {timeout}s for {count} {method} call(s), got {len(matching())}; "
                f"calls so far: [{seen}]"
            )

    def fail_next(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 429,
        retry_after: int | None = 1,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """Make the next `times` calls of `method` fail: 429 with Retry-After, a 5xx, or (status=200)
        a Slack error such as `channel_not_found`; `delay` seconds first, to provoke client timeouts."""
        if error is None:
            error = (
                "ratelimited"
                if status == 429
                else "internal_error"
                if status >= 500
                else "fatal_error"
            )
        with self._changed:
            self._failures.setdefault(method, []).append(
                _Failure(error, status, retry_after if status == 429 else None, times, delay)
            )

    def rate_limit_randomly(self, share: float, *, seed: int = 11) -> None:
        """Answer `share` of all Web API calls with 429 and Retry-After 0 or 1 (0 turns it off)."""
        with self._changed:
            self._random_429 = (random.Random(seed), share) if share > 0 else None

    def rate_limit(
        self, method: str = "chat.postMessage", *, per_channel_per_second: float = 1.0
    ) -> None:
        """Opt in to Slack's per-channel posting limit: a faster post gets 429 with Retry-After."""
        with self._changed:
            self._rate_limits[method] = 1.0 / per_channel_per_second

    def _rate_limited(self, method: str, params: dict[str, Any]) -> bool:
        interval = self._rate_limits.get(method)
        if interval is None:
            return False
        key = (method, str(params.get("channel") or params.get("channel_id") or ""))
        now = time.monotonic()
        with self._changed:
            last = self._last_post.get(key)
            if last is not None and now - last < interval:
                return True
            self._last_post[key] = now
        return False

    def delay_next(
        self, method: str, seconds: float, *, times: int = 1, landed: bool = False
    ) -> None:
        """Make the next `times` calls of `method` answer normally, but only after `seconds`.

        With `landed`, the call takes effect at once and only its answer is late: what a client
        that times out meanwhile cannot tell from a call that never arrived."""
        with self._changed:
            self._delays.setdefault(method, []).extend([(seconds, landed)] * times)

    def rate_limit_tier(
        self, tier: str, *, retry_after: int = 1, times: int = 1, error: str = "ratelimited"
    ) -> None:
        """Answer the next `times` calls of any method in `tier` ("1"…"4", "special";
        `standin.api.METHOD_TIERS`) with 429 and Retry-After, as Slack does per tier."""
        if tier not in set(METHOD_TIERS.values()):
            raise ValueError(f"unknown tier {tier!r}")
        with self._changed:
            self._tier_failures.setdefault(tier, []).append(
                _Failure(error, 429, retry_after, times, 0.0)
            )

    def drop_next(self, method: str, *, landed: bool = False, times: int = 1) -> None:
        """Reset the connection of the next `times` calls of `method` instead of answering.

        `landed=False`: reset before the call does anything. `landed=True`: the call takes
        effect (a post is posted), then the connection is reset: the client sees an error for
        something that happened."""
        with self._changed:
            self._drops.setdefault(method, []).extend([landed] * times)

    def pending_faults(self) -> int:
        """How many armed failures, drops and delays have not met their call yet."""
        with self._changed:
            return (
                sum(f.times for queue in self._failures.values() for f in queue)
                + sum(f.times for queue in self._tier_failures.values() for f in queue)
                + sum(len(queue) for queue in self._drops.values())
                + sum(len(queue) for queue in self._delays.values())
            )

    def clear_faults(self) -> None:
        """Forget every failure, drop and delay still waiting for its call (not `rate_limit`)."""
        with self._changed:
            self._failures.clear()
            self._tier_failures.clear()
            self._drops.clear()
            self._delays.clear()

    def revoke_token(self, token: str | None = None, *, error: str = "token_revoked") -> None:
        """From now on every call with `token` (the workspace's bot token by default) gets
        `error` (`token_revoked`, `invalid_auth`, `account_inactive`), as after an uninstall.
        Issue a new one with `standin.workspace.bot_token = "xoxb-…"`."""
        with self._changed:
            self._revoked_tokens[token or self.workspace.bot_token] = error

    def issue_trigger(self, user_id: str | None = None) -> str:
        """A trigger_id as Slack puts in an interaction payload (usable once, for 3 seconds)."""
        with self._changed:
            return self.state.issue_trigger(user_id)

    def new_response_url(
        self, *, user_id: str, channel_id: str, message_ts: str | None = None
    ) -> str:
        """A response_url as Slack puts in a command or interaction payload (5 uses, 30 minutes).

        With `message_ts` (a button on a bot message), `replace_original` / `delete_original`
        change that message, as in Slack; otherwise the answer is an ephemeral to `user_id`.
        """
        with self._changed:
            key = self.state.next_id("R")
            self._response_urls[key] = _ResponseUrl(
                key, user_id, channel_id, time.time(), message_ts
            )
        return f"{self.url}response/{key}"

    def dm_channel(self, user_id: str) -> str:
        """The bot's DM channel with a user (created on first use, as conversations.open does)."""
        with self._changed:
            return self.state.dm_channel(user_id)

    def messages(self, channel: str) -> list[Message]:
        """Messages in a channel, oldest first; a user ID means the bot's DM with that user."""
        with self._changed:
            if channel[:1] in "UW":
                channel = self.state.dms.get(channel, "")
            return list(self.state.messages.get(channel, []))

    def ephemerals(self, user: str | None = None) -> list[Ephemeral]:
        with self._changed:
            return [e for e in self.state.ephemerals if user is None or e.user == user]

    def home(self, user_id: str) -> dict[str, Any] | None:
        with self._changed:
            stored = self.state.homes.get(user_id)
            return dict(stored.view) if stored else None

    def view(self, view_id: str) -> dict[str, Any] | None:
        with self._changed:
            stored = self.state.views.get(view_id)
            return dict(stored.view) if stored else None

    # --- Socket Mode ------------------------------------------------------------------------

    def socket_connections(self) -> list[SocketModeConnection]:
        with self._changed:
            return [c for c in self._sockets if not c.closed]

    def wait_for_socket(self, timeout: float = 10.0) -> SocketModeConnection:
        """Block until an app has connected in Socket Mode (and been sent `hello`)."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: any(not c.closed for c in self._sockets), timeout
            ):
                raise AssertionError(f"no Socket Mode connection within {timeout}s")
            return [c for c in self._sockets if not c.closed][-1]

    def send_envelope(
        self, kind: str, payload: dict[str, Any], *, timeout: float = 5.0
    ) -> dict[str, Any]:
        """Deliver a `slash_commands` / `interactive` / `events_api` envelope; the ack's payload."""
        return self.wait_for_socket(timeout).envelope(kind, payload, timeout=timeout)

    def _socket_opened(self, connection: SocketModeConnection) -> None:
        with self._changed:
            self._sockets.append(connection)
            self._record(Call("socket_mode.connect", {}, time.time(), True))

    # --- request handling (called by _Handler threads) ----------------------------------------

    def _record(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def _take_failure(self, method: str) -> _Failure | None:
        with self._changed:
            if self._random_429 is not None:
                generator, share = self._random_429
                if generator.random() < share:
                    return _Failure("ratelimited", 429, generator.choice((0, 1)), 1, 0.0)
            queue = self._failures.get(method) or self._tier_failures.get(
                METHOD_TIERS.get(method, ""), []
            )
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure

    def handle_api(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Answer one Web API call: (HTTP status, extra headers, JSON body)."""
        now = time.time()
        entry = METHODS.get(method)
        failure = self._take_failure(method)
        if failure is None and self._rate_limited(method, params):
            failure = _Failure("ratelimited", 429, 1, 1, 0.0)
        with self._changed:
            delays = self._delays.get(method)
            delay, late_answer = delays.pop(0) if delays else (0.0, False)
            drops = self._drops.get(method) if failure is None else None
            drop = drops.pop(0) if drops else None
        if drop is False:
            self._record(Call(method, params, now, False, "connection_reset"))
            raise Dropped(method)
        if delay and not late_answer:
            time.sleep(delay)
        if failure is not None:
            if failure.delay:
                time.sleep(failure.delay)
            headers = (
                {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            )
            failed = {"ok": False, "error": failure.error}
            self._record(Call(method, params, now, False, failure.error, failed))
            return failure.status, headers, failed
        body: dict[str, Any]
        expected = None
        if entry is not None:
            ws = self.workspace
            expected = ws.app_token if entry[1] == "app" else ws.bot_token
        if entry is None:
            body = {"ok": False, "error": "unknown_method"}
        elif not token:
            body = {"ok": False, "error": "not_authed"}
        elif token in self._revoked_tokens:
            body = {"ok": False, "error": self._revoked_tokens[token]}
        elif token != expected:
            body = {"ok": False, "error": "invalid_auth"}
        else:
            try:
                with self._changed:
                    body = {"ok": True, **entry[0](self.state, params)}
            except ApiError as exc:
                body = {"ok": False, "error": exc.code}
                if exc.messages:
                    body["response_metadata"] = {"messages": exc.messages}
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                # A malformed argument (e.g. oldest="soon"): Slack answers, it does not crash.
                body = {
                    "ok": False,
                    "error": "invalid_arguments",
                    "response_metadata": {"messages": [f"[ERROR] {exc}"]},
                }
        error = body.get("error")
        if drop:
            # It happened, but the answer never leaves: recorded as done, then the reset.
            self._record(Call(method, params, now, error is None, "connection_reset", body))
            raise Dropped(method)
        self._record(Call(method, params, now, error is None, str(error) if error else None, body))
        if delay and late_answer:
            time.sleep(delay)
        return (404 if entry is None else 200), {}, body

    def handle_response_url(self, key: str, payload: Any) -> tuple[int, str]:
        now = time.time()
        with self._changed:
            target = self._response_urls.get(key)
            error: str | None
            if target is None:
                status, error = 404, "no_such_url"
            elif now - target.created > RESPONSE_URL_LIFETIME:
                status, error = 404, "expired_url"
            elif target.uses >= RESPONSE_URL_USES:
                status, error = 404, "used_url"
            else:
                target.uses += 1
                status, error = self._deliver_response(target, payload)
            params = dict(payload) if isinstance(payload, dict) else {"raw": payload}
            if target is not None:
                params.update(response_url_id=key, user=target.user, channel=target.channel)
            self._record(Call("response_url", params, now, status == 200, error))
        return status, error or "ok"

    def _deliver_response(self, target: _ResponseUrl, payload: Any) -> tuple[int, str | None]:
        if not isinstance(payload, dict):
            return 400, "invalid_payload"
        blocks = payload.get("blocks")
        try:
            if blocks is not None:
                check_blocks(blocks)
        except Invalid:
            return 400, "invalid_blocks"
        if not payload.get("text") and not blocks:
            return 400, "no_text"
        text, blocks = str(payload.get("text") or ""), list(blocks or [])
        original = self._original_message(target)
        if original is not None and _truthy(payload.get("delete_original")):
            self.state.messages[original.channel].remove(original)
        elif original is not None and _truthy(payload.get("replace_original")):
            original.text, original.blocks, original.edited = text, blocks, True
        elif payload.get("response_type") == "in_channel":
            message = Message(
                channel=target.channel,
                ts=self.state.next_ts(),
                text=text,
                user=self.workspace.bot_user_id,
                blocks=blocks,
                thread_ts=payload.get("thread_ts"),
            )
            self.state.messages.setdefault(target.channel, []).append(message)
        elif not _truthy(payload.get("delete_original")):
            # Answers to a command, or to a button on an ephemeral message: only the user sees them.
            self.state.ephemerals.append(Ephemeral(target.channel, target.user, text, blocks))
        return 200, None

    def _original_message(self, target: _ResponseUrl) -> Message | None:
        if target.message_ts is None:
            return None
        return next(
            (m for m in self.state.messages.get(target.channel, []) if m.ts == target.message_ts),
            None,
        )

    def handle_upload(self, file_id: str, content: bytes) -> str | None:
        """The POST of a file's bytes to its upload URL: None when taken, else Slack's refusal."""
        with self._changed:
            error = self.state.receive_upload(file_id, content)
        self._record(
            Call(
                "files.upload",
                {"file_id": file_id, "bytes": len(content)},
                time.time(),
                error is None,
                error,
            )
        )
        return error

    def uploaded_files(self, channel: str | None = None) -> list[UploadedFile]:
        """Files the bot shared (upload completed), oldest first; a user ID means the bot's DM."""
        with self._changed:
            if channel is not None and channel[:1] in "UW":
                channel = self.state.dms.get(channel, "")
            return [
                replace(f)
                for f in self.state.files.values()
                if f.completed and (channel is None or f.channel == channel)
            ]


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn
    server_version = "SlackStandIn/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        # Quiet: the call records are the log, and request lines could carry tokens in query strings.
        return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # a late answer to a client that gave up (delay_next)

    def _params(self, raw: bytes, query: str) -> dict[str, Any]:
        params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query).items()}
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type == "application/json" and raw:
            body = json.loads(raw)
            if isinstance(body, dict):
                params.update(body)
        elif raw:
            params.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8")).items()})
        return params

    def _token(self, params: dict[str, Any]) -> str | None:
        header = self.headers.get("Authorization") or ""
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        token = params.pop("token", None)
        return str(token) if token else None

    def _reset(self) -> None:
        """Close the connection with a TCP reset (SO_LINGER 0), no HTTP answer at all."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/socket-mode":
            self._upgrade_to_socket_mode()
            return
        self.do_POST()

    def _upgrade_to_socket_mode(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key")
        if (self.headers.get("Upgrade") or "").lower() != "websocket" or not key:
            self._send(400, b"websocket upgrade expected", "text/plain")
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.wfile.flush()
        connection = SocketModeConnection(
            self.connection, self.rfile, self.standin.workspace.app_id
        )
        self.standin._socket_opened(connection)
        connection.serve()
        self.close_connection = True

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        raw = self._body()
        if parts.path.startswith("/api/"):
            try:
                params = self._params(raw, parts.query)
            except (json.JSONDecodeError, UnicodeDecodeError):
                self._send(400, b'{"ok":false,"error":"invalid_json"}', "application/json")
                return
            token = self._token(params)
            try:
                status, headers, body = self.standin.handle_api(parts.path[5:], params, token)
            except Dropped:
                self._reset()
                return
            self._send(
                status, json.dumps(body).encode(), "application/json; charset=utf-8", headers
            )
        elif parts.path.startswith("/response/"):
            try:
                payload = json.loads(raw or b"null")
            except json.JSONDecodeError:
                payload = raw.decode("utf-8", "replace")
            status, text = self.standin.handle_response_url(parts.path[10:], payload)
            self._send(status, text.encode(), "text/plain")
        elif parts.path.startswith("/upload/"):
            error = self.standin.handle_upload(parts.path[8:], raw)
            status = (
                HTTPStatus.OK
                if error is None
                else HTTPStatus.NOT_FOUND
                if error == "file_not_found"
                else HTTPStatus.BAD_REQUEST
            )
            self._send(status, (error or "OK").encode(), "text/plain")
        else:
            self._send(404, b"not found", "text/plain")


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")
