"""`GET /healthz` for orchestrators: 200 while the database answers, Slack accepts the bot token and,
in Socket Mode, the socket is up; otherwise 503 with the reason."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.slack.credentials import SlackCredentials
from storage.db import database_answers


class SlackConnection(Protocol):
    """What the probe asks of slack_sdk's SocketModeClient."""

    def is_connected(self) -> bool: ...


def health_problem(
    engine: Engine,
    socket: SlackConnection | None = None,
    credentials: SlackCredentials | None = None,
) -> str | None:
    """Why this process cannot do its work now, or None when it can."""
    if not database_answers(engine):
        return "database unavailable"
    revoked = credentials.revoked if credentials is not None else None
    if revoked is not None:
        # Restarting will not help until the token is replaced: the reason says what to do.
        return revoked.reason()
    if socket is not None and not socket.is_connected():
        return "not connected to Slack (Socket Mode)"
    return None


def healthz_endpoint(
    engine: Engine,
    socket: SlackConnection | None = None,
    credentials: SlackCredentials | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    """The /healthz handler; the checks block (a database round trip), so they run in a thread."""

    async def healthz(_request: Request) -> Response:
        problem = await run_in_threadpool(health_problem, engine, socket, credentials)
        if problem is None:
            return PlainTextResponse("ok")
        return PlainTextResponse(problem, status_code=503)

    return healthz


def health_app(
    engine: Engine,
    socket: SlackConnection,
    routes: Sequence[Route] = (),
    credentials: SlackCredentials | None = None,
) -> Starlette:
    """The whole HTTP surface in Socket Mode, where Slack's requests come over the socket: the
    health check, and the trackers' webhooks (`routes`), which cannot."""
    return Starlette(
        routes=[
            Route("/healthz", healthz_endpoint(engine, socket, credentials), methods=["GET"]),
            *routes,
        ]
    )
