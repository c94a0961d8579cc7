"""Signed requests no listener takes or nobody could read: a polite 2xx or a 400, never 5xx or 404."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import socket
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.requests import Request

from bot.entry.server import MAX_BODY_BYTES, _read_body
from bot.errors import UserError
from tests.slack_harness import SIGNING_SECRET, row_counts


def _add_test_listeners(app: Any) -> None:
    @app.command("/echo")
    def echo(ack: Any, command: dict[str, Any]) -> None:
        ack(text=f"echo {command['text']}")

    @app.command("/later")
    def later(ack: Any) -> None:
        ack()
        raise UserError("That took a while and then failed.")


@pytest.fixture
def extra_listeners() -> list[Any]:
    return [_add_test_listeners]


def _form(payload: Any) -> str:
    return urlencode({"payload": json.dumps(payload)})


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# The smallest bodies that got a 500 (issue 7), and their neighbours.
MALFORMED = {
    "event is a number": (json.dumps({"event": 42, "type": "event_callback"}), JSON, 200),
    "event without a type": (json.dumps({"event": {}, "type": "event_callback"}), JSON, 200),
    "actions null": (_form({"type": "block_actions", "actions": None}), FORM, 400),
    "actions empty": (_form({"type": "block_actions", "actions": []}), FORM, 400),
    "actions of numbers": (_form({"type": "block_actions", "actions": [1]}), FORM, 400),
    "view null": (_form({"type": "view_submission", "view": None}), FORM, 400),
    "view without callback_id": (_form({"type": "view_submission", "view": {}}), FORM, 400),
    "workflow_step_edit": (
        _form({"type": "workflow_step_edit", "callback_id": "planpulse_home"}),
        FORM,
        400,
    ),
    "payload is an array": (_form(["a", "list"]), FORM, 400),
    "payload is not JSON": ("payload=not json", FORM, 400),
    "empty body": ("", FORM, 400),
    "no type, no command": ("a=b", FORM, 400),
    "user deeply nested": (
        '{"type": "event_callback", "event_id": "EvDEEP", "event": {"type": "app_home_opened",'
        ' "user": ' + '{"a": ' * 100 + "1" + "}" * 100 + "}}",
        JSON,
        200,
    ),
    "nested past the decoder": ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", JSON, 400),
    "team is a number": (_form({"type": "shortcut", "callback_id": "x", "team": 5}), FORM, 400),
    "authorizations a string": (
        json.dumps({"type": "event_callback", "event": {"type": "x"}, "authorizations": "abc"}),
        JSON,
        200,
    ),
    "not UTF-8": ("payload=%FF", FORM, 400),
    "huge integer": ('{"type": "event_callback", "event_id": ' + "9" * 5000 + "}", JSON, 400),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_signed_request_is_refused_politely(bot, engine, caplog, case) -> None:
    body, content_type, status = MALFORMED[case]
    before = row_counts(engine)
    response = bot.post(body, content_type=content_type)
    assert response.status_code == status
    assert "Traceback" not in response.text and "File " not in response.text
    bot.wait_idle()
    assert row_counts(engine) == before
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


def test_a_signed_body_that_is_not_utf8_is_refused(bot) -> None:
    raw = b"payload=\xff\xfe"
    stamp = str(int(time.time()))
    digest = hmac.new(SIGNING_SECRET.encode(), f"v0:{stamp}:".encode() + raw, hashlib.sha256)
    headers = {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),  # over the bytes, as Slack signs
    }
    response = bot.http.post("/slack/events", content=raw, headers=headers)
    assert response.status_code == 400


def test_an_unknown_button_is_acknowledged_and_the_person_told(bot, standin) -> None:
    bot.services.slack.post_message(channel="CDELIVERY", text="from an older version")
    payload = bot.block_action_payload(
        "retired_button", "1", user_id="UBOB", channel_id="CDELIVERY"
    )
    response = bot.action(payload)
    assert response.status_code == 200 and response.text == ""
    [reply] = standin.wait_for("response_url")
    assert reply.params["text"].startswith("This button is no longer active")
    assert reply.params["response_type"] == "ephemeral" and reply.params["user"] == "UBOB"


def test_an_unknown_button_in_the_home_tab_is_answered_by_dm(bot, standin) -> None:
    payload = bot.block_action_payload(
        "retired_button", user_id="UBOB", view={"id": "V1", "type": "home"}
    )
    assert bot.action(payload).status_code == 200
    [dm] = standin.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UBOB"
    assert dm.params["text"].startswith("This button is no longer active")


def test_an_unknown_command_gets_an_ephemeral_answer(bot) -> None:
    response = bot.command("/retired", "x", user_id="UALICE")
    assert response.status_code == 200
    assert response.json() == {
        "response_type": "ephemeral",
        "text": "I do not answer /retired (any more). Try /plan help to see what I can do.",
    }


def test_an_unknown_modal_submission_is_replaced_by_a_message(bot, standin) -> None:
    from standin.validation import check_view

    payload = bot.view_submission_payload("retired_modal", {}, user_id="UALICE")
    response = bot.view_submission(payload)
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "update"
    check_view(answer["view"], kind="modal")
    assert "This form is no longer active" in json.dumps(answer["view"])


@pytest.mark.parametrize(
    "payload, expected",
    [
        ({"type": "shortcut", "callback_id": "retired", "user": {"id": "UALICE"}}, ""),
        ({"type": "view_closed", "view": {"callback_id": "retired", "type": "modal"}}, ""),
        ({"type": "block_suggestion", "action_id": "retired", "value": "q"}, '{"options": []}'),
        ({"type": "some_future_type"}, ""),
    ],
)
def test_other_unknown_interactions_are_acknowledged(bot, payload, expected) -> None:
    response = bot.post(_form(payload))
    assert (response.status_code, response.text) == (200, expected)


def test_an_unknown_event_is_acknowledged(bot, standin) -> None:
    response = bot.event({"type": "reaction_added", "user": "UALICE", "reaction": "tada"})
    assert (response.status_code, response.text) == (200, "")
    bot.wait_idle()
    assert {c.method for c in standin.calls()} <= {"auth.test"}  # Bolt's own, once


def test_a_command_whose_form_mentions_payload_is_read_as_a_command(bot) -> None:
    """Bolt reads any form containing "payload" as an interaction; bot/entry/server.py corrects it."""
    response = bot.command("/echo", "payload-volume", user_id="UALICE", channel_name="payload")
    assert (response.status_code, response.text) == (200, "echo payload-volume")


def test_a_response_url_outside_slack_receives_nothing(bot, internal_service, caplog) -> None:
    response = bot.command("/later", user_id="UBOB", response_url=internal_service.url)
    assert response.status_code == 200
    bot.wait_idle()
    assert internal_service.received == []
    assert any("outside Slack" in r.getMessage() for r in caplog.records)


def test_a_body_over_a_mebibyte_is_refused_with_413(bot, engine) -> None:
    before = row_counts(engine)
    filler = "x" * MAX_BODY_BYTES
    body = json.dumps({"type": "event_callback", "event": {"type": "x", "text": filler}})
    response = bot.post(body, content_type=JSON)
    assert response.status_code == 413
    assert row_counts(engine) == before
    just_under = json.dumps({"type": "event_callback", "event": {"type": "x", "t": filler[:-200]}})
    assert bot.post(just_under, content_type=JSON).status_code == 200


def test_a_declared_length_over_a_mebibyte_is_refused_before_the_body_is_sent(bot) -> None:
    host, port = bot.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(
            b"POST /slack/events HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )
        status_line = conn.recv(100).split(b"\r\n")[0]
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"


def test_a_chunked_body_is_read_no_further_than_the_limit() -> None:
    """A body without a Content-Length (or with a lying one) is counted as it arrives."""
    chunk = b"x" * 65536
    received = 0

    async def receive() -> dict[str, Any]:
        nonlocal received
        received += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}  # never ends

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    assert asyncio.run(_read_body(request)) is None
    assert received <= MAX_BODY_BYTES + len(chunk)


def test_healthz_still_answers_after_all_that(bot) -> None:
    bot.post("payload=not json")
    bot.post(_form({"type": "block_actions", "actions": []}))
    assert bot.get("/healthz").status_code == 200
