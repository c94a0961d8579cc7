"""The real bot for the demo: the Slack stand-in with the example workspace, and the real server.

The server (`build_asgi_app` under uvicorn) listens on a loopback port; Slack's side of the
conversation is `standin.client`, which signs every request as Slack does. The bot's clock is
the demo's: every handler and tick reads `services.clock`, so a quarter passes in seconds.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from bot.clock import utcnow
from bot.entry.app import create_app
from bot.entry.server import build_asgi_app
from bot.planfile.example import WORKSPACE_FILE
from bot.services import Services
from bot.settings import load_settings
from bot.slack.gateway import SlackGateway
from standin import StandIn, Workspace
from standin.api import Message
from standin.client import BotReply, SlackRequest, SlackSide

WAIT_SECONDS = 10.0


class ListenerPool(ThreadPoolExecutor):
    """Bolt's listener executor, counting unfinished work: the demo waits for each click's effects
    before its clock moves on."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="demo-listener")
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._idle:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Future[Any]) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self, timeout: float = WAIT_SECONDS) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: self._pending == 0, timeout):
                raise RuntimeError(f"the bot was still busy after {timeout} s")


@dataclass(frozen=True)
class LiveBot:
    """The running stand-in and server, and Slack's side of talking to it."""

    standin: StandIn
    services: Services
    slack: SlackSide
    url: str
    listeners: ListenerPool

    def send(self, request: SlackRequest) -> BotReply:
        """A signed request, as Slack sends it; returns once the bot has finished with it."""
        reply = self.slack.send(self.url, request)
        self.listeners.wait_idle()
        return reply

    def names(self) -> dict[str, str]:
        return {u.id: u.real_name or u.name for u in self.standin.workspace.users.values()}


@contextmanager
def live_bot(
    engine: Engine, database_url: str, clock: Callable[[], datetime] | None = None
) -> Iterator[LiveBot]:
    """The stand-in with the example workspace and the real HTTP server; both stopped on exit."""
    secret = secrets.token_hex(16)  # this run's own: nothing else can sign requests to it
    standin = StandIn(Workspace.from_yaml(WORKSPACE_FILE)).start()
    try:
        settings = load_settings(
            database_url=database_url,
            slack_bot_token=standin.workspace.bot_token,
            slack_signing_secret=secret,
            slack_app_token=None,
            slack_api_url=standin.api_url,
        )
        services = Services(
            settings=settings,
            engine=engine,
            slack=SlackGateway.from_settings(settings),
            clock=clock or utcnow,
        )
        listeners = ListenerPool()
        with http_server(services, listeners) as url:
            yield LiveBot(
                standin, services, SlackSide(standin, signing_secret=secret), url, listeners
            )
    finally:
        standin.stop()


@contextmanager
def http_server(services: Services, listeners: ListenerPool) -> Iterator[str]:
    """The real ASGI app under uvicorn on a free loopback port, in a thread; yields its URL."""
    import uvicorn

    asgi = build_asgi_app(services, bolt_app=create_app(services, listener_executor=listeners))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as `serve` does (server._listen)
    server = uvicorn.Server(
        uvicorn.Config(asgi, log_level="warning", lifespan="off", access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the demo's HTTP server did not start")
            time.sleep(0.01)
        host, port = sock.getsockname()[:2]
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(WAIT_SECONDS)
        # Work acked before the stop still finishes, as in `serve`.
        listeners.shutdown(wait=True)
        sock.close()


def find_button(
    messages: list[Message], action_id: str, value: str | None = None
) -> tuple[dict[str, Any], str, dict[str, Any]] | None:
    """The newest message with an `action_id` button (of `value`), its block_id, and the button."""
    for posted in reversed(messages):
        message = posted.as_dict(with_metadata=True)
        for block in message["blocks"]:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id and (
                    value is None or element.get("value") == value
                ):
                    return message, str(block.get("block_id", "")), element
    return None
