"""`planpulse serve`: the bot in HTTP mode (Starlette under uvicorn) or Socket Mode, plus the scheduler.

HTTP mode: `POST /slack/events` takes commands, interactivity and events (one Request URL);
`GET /healthz` answers 200 only while the database answers. Socket Mode serves `GET /healthz` alone
on the same port, 200 only while the database answers and the socket is connected. Bolt's dispatch
is synchronous, so it runs in the thread pool and never blocks the event loop. SIGTERM stops taking
requests, lets those in flight finish (uvicorn's graceful shutdown, then the listener threads), and
exits 0.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.app import LISTENER_THREADS, create_app
from bot.clock import utcnow
from bot.errors import ConfigurationError
from bot.healthz import health_app
from bot.services import Services
from bot.settings import Settings, load_settings
from bot.slack.errors import InvalidAuth, SlackError
from bot.slack.gateway import SlackGateway
from storage.db import database_answers, ensure_schema, make_engine
from templates import render_mrkdwn

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 25  # under the 30 s most orchestrators wait between SIGTERM and SIGKILL


def build_asgi_app(services: Services, *, bolt_app: App | None = None) -> Starlette:
    """The HTTP surface of the bot (also used by the test harness and the benchmarks)."""
    bolt = bolt_app or create_app(services)
    secret = services.settings.slack_signing_secret
    verifier = SignatureVerifier(secret.get_secret_value() if secret is not None else "")

    async def slack_events(request: Request) -> Response:
        # A body that is not UTF-8 cannot carry a valid signature: Bolt will answer 401.
        body = (await request.body()).decode("utf-8", errors="replace")
        try:
            bolt_request = to_bolt_request(request, body.encode())
        except (ValueError, TypeError, AttributeError, KeyError, IndexError):
            # Bolt parses the body before it checks the signature; garbage must still get 401
            # unless Slack signed it, and then a polite answer rather than a 500.
            if not verifier.is_valid_request(body, dict(request.headers)):
                return PlainTextResponse("invalid request", status_code=401)
            log.warning("unreadable request body from Slack (%d bytes)", len(body))
            return PlainTextResponse(render_mrkdwn("blocks/errors/bad_payload.txt.j2"))
        bolt_response = await run_in_threadpool(bolt.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    async def healthz(_request: Request) -> Response:
        if await run_in_threadpool(database_answers, services.engine):
            return PlainTextResponse("ok")
        return PlainTextResponse("database unavailable", status_code=503)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def build_services(settings: Settings) -> Services:
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    return Services(settings=settings, engine=engine, slack=SlackGateway.from_settings(settings))


def serve_command(args: argparse.Namespace) -> int:
    settings = load_settings()
    settings.require_slack()
    services = build_services(settings)
    _check_token(services.slack)
    _sync_directory(services)
    executor = ThreadPoolExecutor(
        max_workers=LISTENER_THREADS, thread_name_prefix="planpulse-listener"
    )
    # Built before any thread starts: create_app briefly hides Slack variables from Bolt, and
    # changing the environment is only safe while no other thread may read it.
    bolt = create_app(services, listener_executor=executor)
    scheduler = None if args.no_scheduler else _start_scheduler(services)
    port = args.port if args.port is not None else settings.port
    try:
        if settings.socket_mode:
            _run_socket_mode(bolt, services, host=args.host, port=port)
        else:
            _run_http(build_asgi_app(services, bolt_app=bolt), host=args.host, port=port)
    finally:
        if scheduler is not None:
            scheduler.shutdown()
        # Listener work acked before the signal still finishes: Slack was told it would happen.
        executor.shutdown(wait=True)
        services.engine.dispose()
    log.info("PlanPulse stopped")
    return 0


def _check_token(gateway: SlackGateway) -> None:
    """Fail fast on a wrong token; a Slack outage at start-up is only a warning (it may pass)."""
    try:
        identity = gateway.auth_test()
    except InvalidAuth as exc:
        raise ConfigurationError(
            f"Slack rejected SLACK_BOT_TOKEN ({exc.code}): copy the Bot User OAuth Token "
            "(xoxb-…) from the app's OAuth & Permissions page (create the app from "
            "`planpulse manifest`)."
        ) from None
    except SlackError as exc:
        log.warning("Slack did not answer auth.test (%s); starting anyway", exc.code)
        return
    log.info("Connected to Slack team %s as bot user %s", identity.team, identity.user_id)


def _sync_directory(services: Services) -> None:
    from bot.directory import sync_people

    try:
        report = sync_people(services, utcnow())
    except SlackError as exc:
        log.warning(
            "People directory not synced at start-up (%s); the daily sync retries", exc.code
        )
        return
    log.info("People directory: %s", report.summary())


def _start_scheduler(services: Services) -> Any:
    from scheduler.runner import start_scheduler

    return start_scheduler(services)


def _listen(host: str, port: int) -> socket.socket:
    """The server's socket, bound here so that a port in use is a configuration error (exit 2)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"Cannot listen on {host}:{port} ({exc.strerror}): set PORT or --port to a free port."
        ) from None
    return sock


def _uvicorn_config(asgi: Starlette, *, host: str, port: int) -> Any:
    import uvicorn

    return uvicorn.Config(
        asgi,
        host=host,
        port=port,
        # uvicorn's lines go through the CLI's handler (LOG_FORMAT, redaction) at its level.
        log_config=None,
        log_level=logging.getLogger().getEffectiveLevel(),
        access_log=False,  # request lines are noise here; Bolt logs what matters
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        lifespan="off",
    )


def _run_http(asgi: Starlette, *, host: str, port: int) -> None:
    import uvicorn

    sock = _listen(host, port)
    server = uvicorn.Server(_uvicorn_config(asgi, host=host, port=port))
    # uvicorn re-raises the signal after its graceful shutdown; handling it here makes the
    # process exit 0 (a clean stop) instead of dying of SIGTERM.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    log.info("PlanPulse listening on http://%s:%d/slack/events", host, port)
    with sock:
        server.run(sockets=[sock])


def _run_socket_mode(bolt: App, services: Services, *, host: str, port: int) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    app_token = services.settings.slack_app_token
    assert app_token is not None
    handler = SocketModeHandler(bolt, app_token=app_token.get_secret_value())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Slack needs no HTTP in Socket Mode, but an orchestrator still probes the process.
    health = _HealthServer(health_app(services.engine, handler.client), host=host, port=port)
    try:
        handler.connect()
        log.info("PlanPulse connected in Socket Mode; GET /healthz on %s:%d", host, port)
        stop.wait()
        log.info("Stopping: closing the Socket Mode connection")
        handler.close()
    finally:
        health.stop()


class _HealthServer:
    """uvicorn on a thread of its own, serving Socket Mode's /healthz until `stop()`."""

    def __init__(self, asgi: Starlette, *, host: str, port: int) -> None:
        import uvicorn

        self._sock = _listen(host, port)
        self._server = uvicorn.Server(_uvicorn_config(asgi, host=host, port=port))
        # Off the main thread uvicorn installs no signal handlers: SIGTERM stays serve's.
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name="planpulse-healthz",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(GRACEFUL_SECONDS)
        self._sock.close()
