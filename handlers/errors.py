"""The one error handler: a UserError becomes a polite reply, anything else is logged and apologised for.

Before the ack, the reply rides on the HTTP response (a command's ephemeral text, a modal's field
errors); after it, it goes through the response_url, an ephemeral message, or a DM. The person
never sees a traceback and Slack never sees a 500. A request no listener handles (a button on a
message from an older version, a command or event this version does not know) is acknowledged,
and whoever clicked is told it is no longer active. A request whose signature cannot be verified
is answered 401 and nothing else, should one ever get this far (bot/entry/server.py refuses them first).
An event whose listener failed gives back its claim, so that Slack's retry does the work.
An answer or vote the database could not take (storage.db.NotSaved) is told as not saved; one
saved but not shown (the database went away just after) is told as saved.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from typing import Any

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.error import BoltUnhandledRequestError

from bot.clock import utcnow
from bot.errors import UserError
from bot.services import Services
from bot.slack.errors import SlackError
from bot.slack.signature import header_problem
from handlers.middleware import release_claim
from handlers.payload import BadPayload, optional_str
from storage.db import NotSaved, SavedNotShown
from templates import Trusted, render_json, render_mrkdwn
from templates.problems import say, say_all

log = logging.getLogger(__name__)

# Where a person clicked something that no listener of this version handles.
CLICKS = {
    "block_actions": "button",
    "interactive_message": "button",
    "shortcut": "shortcut",
    "message_action": "shortcut",
}
SUGGESTIONS = ("block_suggestion", "dialog_suggestion")


def register(app: App, services: Services) -> None:
    secret = services.settings.slack_signing_secret
    signing_secret = secret.get_secret_value() if secret is not None else None
    # Answers after the ack run where listeners run (and where tests wait for them).
    executor = app.listener_runner.listener_executor

    @app.error
    def handle_error(
        error: Exception,
        body: Any,
        request: BoltRequest | None,
        context: Any,
        response: BoltResponse | None,
    ) -> BoltResponse | None:
        if _unverified(request, signing_secret):
            return BoltResponse(status=401, body="") if response is not None else None
        body = body if isinstance(body, dict) else {}
        kind = _kind(body)
        if isinstance(error, BoltUnhandledRequestError):
            return _answer_unhandled(services, executor, kind, body, response)
        message = _describe(error, kind)
        if kind == "event_callback":
            release_claim(services, context)
            return _plain_ack(response)  # nobody is waiting for an answer to an event
        if response is not None:  # not acknowledged yet: the answer can ride on the ack
            immediate = _answer_in_ack(kind, body, error, message)
            if immediate is not None:
                return immediate
        _answer_later(services, body, message)
        return _plain_ack(response)


def answer_after_ack(services: Services, error: Exception, body: Any, context: Any = None) -> None:
    """A listener failed after its ack (see handlers/guard.py): log it, tell the person later."""
    body = body if isinstance(body, dict) else {}
    kind = _kind(body)
    message = _describe(error, kind)
    if kind == "event_callback":  # nobody waits for an answer; a retry may redo the work
        release_claim(services, context)
    else:
        _answer_later(services, body, message)


def _unverified(request: BoltRequest | None, signing_secret: str | None) -> bool:
    """True for an HTTP request Slack did not sign (Socket Mode's arrive authenticated)."""
    if request is None or request.mode == "socket_mode":
        return False
    problem = header_problem(
        secret=signing_secret,
        body=request.raw_body.encode(),
        headers=request.headers,
        now=utcnow().timestamp(),
    )
    if problem is not None:
        log.warning("an unverified request reached the error handler (%s); ignored", problem)
    return problem is not None


def _answer_unhandled(
    services: Services,
    executor: Executor,
    kind: str,
    body: dict[str, Any],
    response: BoltResponse | None,
) -> BoltResponse | None:
    """Acknowledged politely: Slack shows a person a failure for anything but a 2xx."""
    log.info("no listener for this %s (%s); acknowledged", kind, _what(body))
    if response is None:
        return None
    if kind == "slash_command":
        text = render_mrkdwn(
            "blocks/errors/unknown_command.txt.j2",
            command=optional_str(body, "command") or "",
            help_command=f"{services.settings.plan_command} help",
        )
        return BoltResponse(status=200, body={"response_type": "ephemeral", "text": text})
    if kind == "view_submission":
        message = render_mrkdwn("blocks/errors/no_longer_active.txt.j2", what="form")
        view = render_json("blocks/errors/modal_error.json.j2", message=message)
        return BoltResponse(status=200, body={"response_action": "update", "view": view})
    if kind in SUGGESTIONS:
        return BoltResponse(status=200, body={"options": []})
    if kind in CLICKS:
        message = render_mrkdwn("blocks/errors/no_longer_active.txt.j2", what=CLICKS[kind])
        executor.submit(_answer_later_logged, services, body, message)
    return BoltResponse(status=200, body="")


def _what(body: dict[str, Any]) -> str:
    """What was asked for, for the log: the command, action, callback or event type."""
    for path in (
        ("command",),
        ("actions", 0, "action_id"),
        ("view", "callback_id"),
        ("callback_id",),
        ("action_id",),
        ("event", "type"),
    ):
        found = optional_str(body, *path)
        if found:
            return f"{'.'.join(map(str, path))}={found[:100]!r}"
    return "nothing named"


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
    if isinstance(error, NotSaved):  # the database went away: the person must not think it saved
        log.error("%s on %s", error, kind, exc_info=error)
        return render_mrkdwn("blocks/errors/not_saved.txt.j2", what=error.what)
    if isinstance(error, SavedNotShown):  # saved: saying "something went wrong" would mislead
        log.warning("%s on %s", error, kind, exc_info=error)
        return render_mrkdwn("blocks/errors/saved_not_shown.txt.j2", what=error.what)
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


def _answer_later_logged(services: Services, body: dict[str, Any], message: str) -> None:
    try:
        _answer_later(services, body, message)
    except Exception:
        # On the executor, an exception would vanish with its future: log it instead.
        log.exception("could not tell the person their click is no longer active")


def _first_response_url(body: dict[str, Any]) -> str | None:
    urls = body.get("response_urls")
    if isinstance(urls, list) and urls and isinstance(urls[0], dict):
        value = urls[0].get("response_url")
        return value if isinstance(value, str) else None
    return None
