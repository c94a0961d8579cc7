"""`planpulse serve`: the bot in HTTP mode (Starlette under uvicorn) or Socket Mode, plus the scheduler.

HTTP mode: `POST /slack/events` takes commands, interactivity and events (one Request URL);
`GET /healthz` answers 200 only while the database answers; `POST /webhooks/github` and
`POST /webhooks/jira` take the trackers' signed deliveries (bot/entry/webhooks.py). Socket Mode serves `GET /healthz` alone
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
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltContext, BoltRequest, BoltResponse
from slack_bolt.adapter.starlette.handler import to_starlette_response
from slack_bolt.request.internals import build_context
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.clock import utcnow
from bot.entry.app import create_app
from bot.entry.healthz import health_app, healthz_endpoint
from bot.entry.webhooks import webhook_routes
from bot.errors import ConfigurationError
from bot.problems import ProblemCode, problem
from bot.services import Services
from bot.settings import Settings, load_settings
from bot.slack.errors import InvalidAuth, SlackError
from bot.slack.gateway import SlackGateway
from bot.slack.signature import header_problem
from handlers.deadline import RECEIVED_AT
from handlers.envelope import Malformed, is_event, parse_body, read_envelope
from storage.db import ensure_schema, make_engine
from templates import render_mrkdwn

log = logging.getLogger(__name__)

GRACEFUL_SECONDS = 25  # under the 30 s most orchestrators wait between SIGTERM and SIGKILL
MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are far smaller; larger ones are refused (413)


class ServeProblem(ProblemCode):
    """What stops `planpulse serve` at start-up."""

    CREDENTIALS_REJECTED = "serve.credentials_rejected"  # error: Slack's error code
    PORT_UNAVAILABLE = "serve.port_unavailable"  # host, port, reason


def build_asgi_app(services: Services, *, bolt_app: App | None = None) -> Starlette:
    """The HTTP surface of the bot (also used by the test harness and the benchmarks)."""
    bolt = bolt_app or create_app(services)
    secret = services.settings.slack_signing_secret
    signing_secret = secret.get_secret_value() if secret is not None else None

    budget = services.settings.ack_deadline_seconds

    async def slack_events(request: Request) -> Response:
        received = time.monotonic()
        raw = await _read_body(request)
        if raw is None:
            return PlainTextResponse("request body too large", status_code=413)
        # Nothing of an unverified request is parsed, dispatched, logged or answered: it once
        # reached the error handler, which posted to a response_url of the sender's choosing.
        problem = header_problem(
            secret=signing_secret, body=raw, headers=request.headers, now=utcnow().timestamp()
        )
        if problem is not None:
            log.warning("refused a request not verified as Slack's: %s", problem)
            return PlainTextResponse("invalid request", status_code=401)
        # Parsing up to a MiB of JSON is work for the thread pool, like Bolt's dispatch.
        bolt_response = await run_in_threadpool(
            _answer_signed,
            bolt,
            raw,
            dict(request.headers.items()),
            request.url.query,
            Arrival(received, budget),
        )
        return to_starlette_response(bolt_response)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route(
                "/healthz",
                healthz_endpoint(services.engine, credentials=services.slack.credentials),
                methods=["GET"],
            ),
            *webhook_routes(services),
        ]
    )


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is over MAX_BODY_BYTES (read no further than one byte past it)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    # The header may lie (or be absent, with chunked encoding): count what really arrives.
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BODY_BYTES:
            return None
    return bytes(received)


@dataclass(frozen=True)
class Arrival:
    """When a request reached the server (`time.monotonic()`), and its ack deadline after that."""

    at: float
    budget: float

    def overdue(self) -> bool:
        return time.monotonic() - self.at >= self.budget


def _answer_signed(
    bolt: App, raw: bytes, headers: dict[str, str], query: str, arrival: Arrival
) -> BoltResponse:
    """Bolt's answer to a request Slack signed, never a 5xx or a 404: a polite 2xx, or a 400."""
    content_type = headers.get("content-type")
    try:
        text, body = read_envelope(raw, content_type)
    except Malformed as exc:
        log.warning("refused a malformed request from Slack (%d bytes): %s", len(raw), exc)
        return _malformed_answer(raw, content_type)
    del raw  # a body of up to a MiB is held as text and parsed; not a third time as bytes
    kind = "event" if is_event(body) else "request"
    if "command" in body and arrival.overdue():
        # It waited its whole budget for a thread: the replica is saturated. Doing the work now
        # would answer too late and delay the requests behind it; say so at once instead.
        log.warning("shed a %s command that waited past its ack deadline", body.get("command"))
        return BoltResponse(status=200, body=render_mrkdwn("blocks/errors/busy.txt.j2"))
    try:
        bolt_request = _bolt_request(text, body, headers, query, arrival)
        response = bolt.dispatch(bolt_request)
    except Exception:
        # Bolt's own request parsing or error path raising: a bug of ours or Bolt's (the
        # envelope check missed a shape Bolt trips over), not the person's.
        log.exception("Bolt failed while answering a signed %s", kind)
        response = BoltResponse(status=500, body="")
    # The one deliberate 5xx: an event the database could not record (handlers/middleware.py),
    # so that Slack redelivers it instead of it being lost.
    retry_later = kind == "event" and response.status == 503
    if (response.status >= 500 and not retry_later) or response.status == 404:
        log.error(
            "Bolt answered a signed %s with %d; acknowledging it instead", kind, response.status
        )
        if kind == "event":
            return BoltResponse(status=200, body="")
        return BoltResponse(status=200, body=render_mrkdwn("blocks/errors/unexpected.txt.j2"))
    return response


def _malformed_answer(raw: bytes, content_type: str | None) -> BoltResponse:
    """200 for an event (a retry would be just as malformed), 400 for anything a person sent."""
    try:
        event = is_event(parse_body(raw.decode("utf-8"), content_type))
    except (Malformed, UnicodeDecodeError):
        event = False
    if event:
        return BoltResponse(status=200, body="")
    return BoltResponse(status=400, body=render_mrkdwn("blocks/errors/bad_payload.txt.j2"))


def _bolt_request(
    text: str, body: dict[str, Any], headers: dict[str, str], query: str, arrival: Arrival
) -> BoltRequest:
    """The request for Bolt, with the body already parsed here rather than parsed again by Bolt.

    Parsing once halves the work and the peak memory of a large payload; and Bolt 1.30 misreads
    any form whose text contains "payload" (a `/kpi payload-volume`, a channel named
    #payload-team) as an interaction without one, i.e. an empty body.
    """
    bolt_headers: dict[str, str | Sequence[str]] = dict(headers)
    bolt_request = BoltRequest(body="", query=query, headers=bolt_headers)
    bolt_request.raw_body = text  # what Bolt's own signature check verifies, again
    bolt_request.body = body
    bolt_request.context = build_context(BoltContext(), body)
    bolt_request.context[RECEIVED_AT] = arrival.at
    return bolt_request


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
        max_workers=settings.listener_threads, thread_name_prefix="planpulse-listener"
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
            problem(ServeProblem.CREDENTIALS_REJECTED, error=exc.code)
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
    # uvicorn serving a socket it is handed leaves Nagle on for the connections it accepts (they
    # inherit the listener's options): a response's header and body writes then wait ~40 ms on
    # the client's delayed ACK. Measured: a bare answer took 43 ms on loopback, 0.7 ms with this.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            problem(ServeProblem.PORT_UNAVAILABLE, host=host, port=port, reason=exc.strerror)
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
    health = _HealthServer(
        health_app(
            services.engine,
            handler.client,
            webhook_routes(services),
            credentials=services.slack.credentials,
        ),
        host=host,
        port=port,
    )
    try:
        handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
        log.info("PlanPulse connected in Socket Mode; GET /healthz on %s:%d", host, port)
        stop.wait()
        log.info("Stopping: closing the Socket Mode connection")
        handler.close()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
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
