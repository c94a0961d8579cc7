"""Pytest plugin that plays Slack: a running stand-in, the real bot over HTTP, signed requests.

Fixtures (registered from tests/conftest.py):

- `standin` — a running `standin.StandIn` with the default workspace
  (standin/workspaces/default.yaml): users UALICE (America/New_York), UBOB (America/Los_Angeles),
  UCIO (Asia/Tokyo), UCFO (Europe/London), UCOO (America/New_York), UCMO (Europe/London),
  UGONE (deactivated), UHELPER (a bot); channels CDELIVERY #it-delivery, CMARKETING #marketing,
  CDECISIONS #exec-decisions, CGENERAL #general (bot is a member of all four), CRANDOM #random
  (bot NOT a member), COLD #old-project (archived). Bot user UBOTPULSE, token `xoxb-test`.
  Use it to look at what the bot did and to make Slack misbehave:
      standin.wait_for("chat.postMessage", count=1, timeout=5, where=lambda c: ...) -> [Call]
      standin.calls("views.open"); standin.messages("CDELIVERY"); standin.messages("UALICE") (DM)
      standin.ephemerals(user="UALICE"); standin.home("UALICE"); standin.view(view_id)
      standin.fail_next("chat.postMessage", status=429, retry_after=1, times=1)
      standin.fail_next("chat.postMessage", status=200, error="channel_not_found")
      standin.delay_next("views.publish", 2.0)          # answers normally, but late
      standin.rate_limit("chat.postMessage", per_channel_per_second=1)  # opt-in 429s
      standin.issue_trigger("UALICE"); standin.new_response_url(user_id=..., channel_id=...)
      standin.workspace.users["UGONE"].deleted = False  # change the workspace mid-test
  Socket Mode: `serve` with SLACK_APP_TOKEN=xapp-test connects to the stand-in's WebSocket;
      standin.wait_for_socket(); standin.send_envelope("slash_commands", payload) -> ack payload
  A `Call` has .method, .params (the request's fields), .ok, .error, .response, .at.
  Answers sent to a response_url are recorded as calls of method "response_url", with
  params = the JSON body + "user" and "channel" of the interaction it belongs to.
- `settings` — `bot.settings.Settings` for this test's database (the `database_url` fixture),
  the stand-in's URL, token `xoxb-test`, signing secret `SIGNING_SECRET`, HTTP mode.
- `services` — `bot.services.Services` built from `settings` (its own engine, the real gateway).
- `bot` — the REAL ASGI app (`bot.entry.server.build_asgi_app`) under uvicorn on a free port, driven
  like Slack drives it. Every request is signed with the signing secret:
      bot.command("/kpi", "portal", user_id="UALICE", channel_id="CDELIVERY") -> httpx.Response
      bot.action(payload) / bot.view_submission(payload) / bot.shortcut(payload)
      bot.event({"type": "app_home_opened", "user": "UALICE", "tab": "home"},
                event_id=None, retry_num=None)
      bot.app_home_opened("UALICE")
      bot.post(body, content_type=..., timestamp=..., signature=..., headers=...)  # raw, for
          security tests; bot.get("/healthz")
  Payload builders (standin/client.py, shared with `planpulse demo`) fill in what Slack would
  (team, user, channel, a fresh response_url and trigger_id from the stand-in):
      bot.block_action_payload(action_id, value=None, *, user_id, channel_id=None,
                               block_id="b", message=None, view=None, action=None)
      bot.view_submission_payload(callback_id, values, *, user_id, private_metadata="",
                                  view_id=None, blocks=None)
  `values` is the `view.state.values` dict: {block_id: {action_id: {"type": ..., "value": ...}}}.
  The ack comes back as the HTTP response; listener work after the ack runs on Bolt's
  executor: `bot.wait_idle()` blocks until every started listener has finished (use it, or
  `standin.wait_for`, before asserting on the database or on Slack calls made after the ack).
  `bot.services` and `bot.standin` are the same objects as the fixtures. A test module can
  override the `extra_listeners` fixture (a list of `callable(app)`) to add test-only listeners;
  `app` is a `handlers.guard.GuardedApp`, as every area gets.

- `internal_service` — a local HTTP listener standing for a service inside the network (what a
  forged response_url would point at): `.url`, `.received` (every request that reached it).
  `row_counts(engine)` counts the rows of every table, to show a request changed nothing.

Do not combine `bot` with freezegun: the stand-in and the server read the real clock (trigger
IDs expire after 3 s, signatures after 5 min). Test rules with an explicit `now` instead.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from bot.services import Services
from bot.settings import Settings, load_settings
from bot.slack.gateway import SlackGateway
from standin import StandIn, Workspace
from standin import client as slack_side
from standin.client import SlackRequest, SlackSide
from storage.db import make_engine

SIGNING_SECRET = "test-signing-secret-0123456789abcdef"


def sign(
    body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> dict[str, str]:
    """Slack's signature headers (standin/client.py), with the test signing secret by default."""
    return slack_side.sign(body, secret=secret, timestamp=timestamp)


class TrackingExecutor(ThreadPoolExecutor):
    """Bolt's listener executor, counting unfinished work so tests can wait for it."""

    def __init__(self) -> None:
        super().__init__(max_workers=8, thread_name_prefix="test-listener")
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise AssertionError(f"listeners still running after {timeout}s")


class SlackBot:
    """The running bot, seen from Slack's side: requests built by `standin.client`, sent with httpx."""

    def __init__(
        self, *, base_url: str, standin: StandIn, services: Services, executor: TrackingExecutor
    ) -> None:
        self.base_url = base_url
        self.standin = standin
        self.services = services
        self.executor = executor
        self.http = httpx.Client(base_url=base_url, timeout=15)
        self.slack = SlackSide(standin, signing_secret=SIGNING_SECRET)
        self.team = self.slack.team
        self.api_app_id = self.slack.api_app_id
        self.block_action_payload = self.slack.block_action_payload
        self.view_submission_payload = self.slack.view_submission_payload

    # --- raw ----------------------------------------------------------------------------------

    def post(
        self,
        body: str,
        *,
        content_type: str = "application/x-www-form-urlencoded",
        timestamp: int | None = None,
        signature: str | None = None,
        headers: dict[str, str] | None = None,
        path: str = "/slack/events",
    ) -> httpx.Response:
        signed = sign(body, timestamp=timestamp)
        if signature is not None:
            signed["X-Slack-Signature"] = signature
        return self.http.post(
            path,
            content=body.encode(),
            headers={"Content-Type": content_type, **signed, **(headers or {})},
        )

    def send(self, request: SlackRequest) -> httpx.Response:
        return self.post(request.body, content_type=request.content_type, headers=request.headers)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def wait_idle(self, timeout: float = 10.0) -> None:
        self.executor.wait_idle(timeout)

    # --- what Slack sends ---------------------------------------------------------------------

    def command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str,
        channel_id: str = "CGENERAL",
        **extra: str,
    ) -> httpx.Response:
        return self.send(
            self.slack.command(command, text, user_id=user_id, channel_id=channel_id, **extra)
        )

    def action(self, payload: dict[str, Any]) -> httpx.Response:
        return self.send(self.slack.interaction(payload))

    def view_submission(self, payload: dict[str, Any]) -> httpx.Response:
        return self.send(self.slack.interaction(payload))

    def shortcut(self, payload: dict[str, Any]) -> httpx.Response:
        return self.send(self.slack.interaction(payload))

    def event(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
    ) -> httpx.Response:
        return self.send(self.slack.event(event, event_id=event_id, retry_num=retry_num))

    def app_home_opened(self, user_id: str, *, event_id: str | None = None) -> httpx.Response:
        return self.send(self.slack.app_home_opened(user_id, event_id=event_id))


class InternalService:
    """A local listener standing for an internal service: records every request that reaches it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                service.received.append(("POST", self.path, self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_PUT = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/internal/admin?token=hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def internal_service() -> Iterator[InternalService]:
    service = InternalService()
    yield service
    service.stop()


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows in every table of the schema: equal before and after means nothing was written."""
    with engine.connect() as connection:
        return {
            table.name: int(
                connection.execute(select(func.count()).select_from(table)).scalar_one()
            )
            for table in SQLModel.metadata.sorted_tables
        }


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as `serve` does (server._listen)
    return sock


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn(Workspace.default()).start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, standin: StandIn) -> Settings:
    return load_settings(
        database_url=database_url,
        slack_bot_token=standin.workspace.bot_token,
        slack_signing_secret=SIGNING_SECRET,
        slack_app_token=None,
        slack_api_url=standin.api_url,
        # Loopback has no network to leave room for, and a loaded CI machine can take a second
        # or two over an answer: the tests that expect an answer in the ack wait as long as
        # Bolt itself would (tests/test_ack_deadline.py sets its own, short deadline).
        ack_deadline_seconds=2.9,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    engine = make_engine(settings.database_url)
    yield Services(settings=settings, engine=engine, slack=SlackGateway.from_settings(settings))
    engine.dispose()


@pytest.fixture
def extra_listeners() -> list[Callable[[Any], None]]:
    """Override in a test module to add test-only listeners, guarded like real ones (error-path tests)."""
    return []


@pytest.fixture
def bot(
    services: Services, standin: StandIn, extra_listeners: list[Callable[[Any], None]]
) -> Iterator[SlackBot]:
    import uvicorn

    from bot.entry.app import create_app
    from bot.entry.server import build_asgi_app
    from handlers.guard import GuardedApp

    executor = TrackingExecutor()
    bolt = create_app(services, listener_executor=executor)
    for add_listeners in extra_listeners:  # registered the way every area registers its own
        add_listeners(GuardedApp(bolt, services))
    asgi = build_asgi_app(services, bolt_app=bolt)
    sock = _free_socket()
    server = uvicorn.Server(
        uvicorn.Config(asgi, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the bot's HTTP server did not start")
        time.sleep(0.01)
    host, port = sock.getsockname()[:2]
    client = SlackBot(
        base_url=f"http://{host}:{port}", standin=standin, services=services, executor=executor
    )
    yield client
    client.http.close()
    try:
        executor.wait_idle(10)
    finally:
        server.should_exit = True
        thread.join(10)
        executor.shutdown(wait=True)
        sock.close()
