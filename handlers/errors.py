"""The one error handler: a UserError becomes a polite reply, anything else is logged and apologised for.

Before the ack, the reply rides on the HTTP response (a command's ephemeral text, a modal's field
errors); after it, it goes through the response_url, an ephemeral message, or a DM. The person
never sees a traceback and Slack never sees a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import App, BoltResponse

from bot.errors import UserError
from bot.services import Services
from bot.slack.errors import SlackError
from handlers.payload import BadPayload, optional_str
from templates import Trusted, render_json, render_mrkdwn
from templates.problems import say, say_all

log = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    @app.error
    def handle_error(
        error: Exception, body: Any, response: BoltResponse | None
    ) -> BoltResponse | None:
        body = body if isinstance(body, dict) else {}
        kind = _kind(body)
        message = _describe(error, kind)
        if kind == "event_callback":
            return _plain_ack(response)  # nobody is waiting for an answer to an event
        if response is not None:  # not acknowledged yet: the answer can ride on the ack
            immediate = _answer_in_ack(kind, body, error, message)
            if immediate is not None:
                return immediate
        _answer_later(services, body, message)
        return _plain_ack(response)


def answer_after_ack(services: Services, error: Exception, body: Any) -> None:
    """A listener failed after its ack (see handlers/guard.py): log it, tell the person later."""
    body = body if isinstance(body, dict) else {}
    kind = _kind(body)
    message = _describe(error, kind)
    if kind != "event_callback":  # nobody is waiting for an answer to an event
        _answer_later(services, body, message)


def _kind(body: dict[str, Any]) -> str:
    return str(body.get("type") or ("slash_command" if "command" in body else "unknown"))


def _describe(error: Exception, kind: str) -> str:
    """Logs the error at the level it deserves and returns the sentence for the person."""
    if isinstance(error, UserError):
        log.info("user error on %s: %s", kind, error.message)
        return say_error(error)
    if isinstance(error, BadPayload):
        log.warning("malformed %s payload: %s", kind, error)
        return render_mrkdwn("blocks/errors/bad_payload.txt.j2")
    log.error("unhandled error on %s", kind, exc_info=error)
    return render_mrkdwn("blocks/errors/unexpected.txt.j2")


def say_error(error: UserError) -> Trusted:
    """A UserError's sentences for Slack: mrkdwn, its parameters escaped once."""
    if error.problems:  # the catalogue escapes each parameter itself
        text: str = Trusted(say_all(error.problems, "slack"))
    else:
        text = error.message
    return Trusted(render_mrkdwn("blocks/errors/user_error.txt.j2", message=text))


def _plain_ack(response: BoltResponse | None) -> BoltResponse | None:
    return BoltResponse(status=200, body="") if response is not None else None


def _answer_in_ack(
    kind: str, body: dict[str, Any], error: Exception, message: str
) -> BoltResponse | None:
    if kind == "slash_command":
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": message})
    if kind == "view_submission":
        located = field_errors(error) if isinstance(error, UserError) else {}
        if located:
            return BoltResponse(status=200, body={"response_action": "errors", "errors": located})
        block_id = getattr(error, "field", None) or _first_input_block(body)
        if block_id is not None:
            return BoltResponse(
                status=200,
                body={"response_action": "errors", "errors": {block_id: message[:2000]}},
            )
        view = render_json("blocks/errors/modal_error.json.j2", message=message)
        return BoltResponse(status=200, body={"response_action": "update", "view": view})
    return None


def field_errors(error: UserError) -> dict[str, str]:
    """A modal's `response_action: errors`: each located problem's sentence under its block_id."""
    located: dict[str, str] = {}
    for problem in error.problems:
        if problem.field is not None and problem.field not in located:
            located[problem.field] = say(problem, "slack")[:2000]  # Slack's limit per field
    return located


def _first_input_block(body: dict[str, Any]) -> str | None:
    view = body.get("view")
    blocks = view.get("blocks") if isinstance(view, dict) else None
    for block in blocks if isinstance(blocks, list) else []:
        if isinstance(block, dict) and block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return None


def _answer_later(services: Services, body: dict[str, Any], message: str) -> None:
    """After the ack: response_url first (works even where the bot is not a member), then a DM."""
    user = optional_str(body, "user", "id") or optional_str(body, "user_id")
    response_url = optional_str(body, "response_url") or _first_response_url(body)
    try:
        if response_url:
            services.slack.respond(response_url, text=message)
        elif user:
            services.slack.post_message(channel=user, text=message)
        else:
            log.warning("no way to tell anyone about the error: no response_url, no user")
    except SlackError as exc:
        log.warning("could not tell the person about the error: %s", exc.code)


def _first_response_url(body: dict[str, Any]) -> str | None:
    urls = body.get("response_urls")
    if isinstance(urls, list) and urls and isinstance(urls[0], dict):
        value = urls[0].get("response_url")
        return value if isinstance(value, str) else None
    return None
