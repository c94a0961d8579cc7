"""`POST /webhooks/github` and `POST /webhooks/jira`: the trackers' signed deliveries, applied once.

Every request's signature is checked over the raw body before anything of it is read: a missing
or wrong signature, GitHub's legacy SHA-1 header alone, or a tracker whose secret is not set
gets 401 and changes nothing. Bodies over a MiB get 413. A payload of an unexpected shape is
logged and answered 400, an event that says nothing about work 202; never a 5xx for what a
tracker sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.services import Services
from bot.work.ingest import receive
from bot.work.payloads import GITHUB, JIRA, Parsed, parse_github, parse_jira
from bot.work.signatures import signature_matches

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1024 * 1024


async def _body(request: Request) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_WEBHOOK_BYTES:
        return None
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_WEBHOOK_BYTES:
            return None
    return bytes(received)


def _endpoint(
    services: Services,
    *,
    source: str,
    secret: SecretStr | None,
    signature_header: str,
    delivery_header: str,
    parse: Callable[[Request, Any], Parsed],
) -> Callable[[Request], Any]:
    async def webhook(request: Request) -> Response:
        raw = await _body(request)
        if raw is None:
            return PlainTextResponse("request body too large", status_code=413)
        if secret is None or not signature_matches(
            secret=secret.get_secret_value(), body=raw, header=request.headers.get(signature_header)
        ):
            log.warning(
                "refused a %s webhook: %s",
                source,
                "no secret is configured" if secret is None else f"no valid {signature_header}",
            )
            return PlainTextResponse("invalid signature", status_code=401)
        delivery_id = request.headers.get(delivery_header, "").strip()
        if not delivery_id or len(delivery_id) > 100:
            return PlainTextResponse(f"missing {delivery_header}", status_code=400)
        try:
            body = json.loads(raw)
        except ValueError:
            log.warning("a %s webhook delivery %s is not JSON", source, delivery_id)
            return PlainTextResponse("not JSON", status_code=400)
        receipt = await run_in_threadpool(
            receive,
            services,
            source=source,
            delivery_id=delivery_id,
            parsed=parse(request, body),
            now=services.clock(),
        )
        return JSONResponse({"outcome": receipt.outcome.value}, status_code=receipt.status)

    return webhook


def webhook_routes(services: Services) -> list[Route]:
    settings = services.settings
    github = _endpoint(
        services,
        source=GITHUB,
        secret=settings.github_webhook_secret,
        signature_header="x-hub-signature-256",
        delivery_header="x-github-delivery",
        parse=lambda request, body: parse_github(request.headers.get("x-github-event"), body),
    )
    jira = _endpoint(
        services,
        source=JIRA,
        secret=settings.jira_webhook_secret,
        signature_header="x-hub-signature",
        delivery_header="x-atlassian-webhook-identifier",
        parse=lambda _request, body: parse_jira(body),
    )
    return [
        Route("/webhooks/github", github, methods=["POST"]),
        Route("/webhooks/jira", jira, methods=["POST"]),
    ]
