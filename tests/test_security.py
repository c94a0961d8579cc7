"""Requests Slack did not sign, stale or replayed requests, retried events, malformed payloads."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlmodel import Session, select

from bot.errors import UserError
from handlers.payload import payload_str
from storage.models import ProcessedEvent


def _add_test_listeners(app: Any) -> None:
    """Listeners that exercise the error paths the real ones share."""

    @app.command("/echo")
    def echo(ack: Any, command: dict[str, Any]) -> None:
        if command["text"] == "bad":
            raise UserError("There is no KPI called <!channel> & co.")
        if command["text"] == "boom":
            raise RuntimeError("a bug")
        ack(text=f"echo {command['text']}")

    @app.command("/later")
    def later(ack: Any, command: dict[str, Any]) -> None:
        ack()
        raise UserError("That took a while and then failed.")

    @app.action("needs_value")
    def needs_value(ack: Any, body: dict[str, Any]) -> None:
        ack()
        payload_str(body, "actions", 0, "value")

    @app.view("form")
    def form(ack: Any, view: dict[str, Any]) -> None:
        raise UserError("Pick a date in the future.", field="when")

    @app.view("form_nofield")
    def form_nofield(ack: Any, view: dict[str, Any]) -> None:
        raise UserError("That plan changed meanwhile.")

    @app.event("app_mention")
    def mention(event: dict[str, Any], say: Any) -> None:
        say(channel=event["channel"], text="hello")


@pytest.fixture
def extra_listeners() -> list[Any]:
    return [_add_test_listeners]


def _command_body(text: str) -> str:
    return urlencode(
        {
            "command": "/echo",
            "text": text,
            "user_id": "UALICE",
            "channel_id": "CGENERAL",
            "team_id": "T0PLANPULSE",
            "response_url": "",
            "trigger_id": "t",
        }
    )


def test_signed_command_is_answered(bot) -> None:
    response = bot.command("/echo", "hi", user_id="UALICE")
    assert response.status_code == 200
    assert response.text == "echo hi"


def test_bad_signature_is_rejected_and_nothing_happens(bot, standin) -> None:
    response = bot.post(_command_body("hi"), signature="v0=" + "0" * 64)
    assert response.status_code == 401
    assert standin.calls() == []


def test_stale_timestamp_is_rejected(bot, standin) -> None:
    response = bot.post(_command_body("hi"), timestamp=int(time.time()) - 6 * 60)
    assert response.status_code == 401
    assert standin.calls() == []


def test_unsigned_request_is_rejected(bot) -> None:
    response = bot.http.post(
        "/slack/events",
        content=_command_body("hi"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 401


def test_user_error_before_ack_is_an_escaped_ephemeral_reply(bot) -> None:
    response = bot.command("/echo", "bad", user_id="UALICE")
    assert response.status_code == 200
    body = response.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"] == "There is no KPI called &lt;!channel&gt; &amp; co."


def test_unexpected_error_is_logged_and_apologised_for(bot, caplog) -> None:
    response = bot.command("/echo", "boom", user_id="UALICE")
    assert response.status_code == 200
    assert "went wrong" in response.json()["text"]
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)


def test_user_error_after_ack_goes_to_the_response_url(bot, standin) -> None:
    response = bot.command("/later", user_id="UBOB", channel_id="CDELIVERY")
    assert response.status_code == 200
    [call] = standin.wait_for("response_url")
    assert call.params["text"] == "That took a while and then failed."
    assert call.params["response_type"] == "ephemeral"
    assert call.params["user"] == "UBOB"


def test_malformed_action_payload_gets_a_polite_reply(bot, standin, caplog) -> None:
    bot.services.slack.post_message(channel="CDELIVERY", text="a message with a button")
    payload = bot.block_action_payload("needs_value", user_id="UALICE", channel_id="CDELIVERY")
    response = bot.action(payload)
    assert response.status_code == 200
    [call] = standin.wait_for("response_url")
    assert "could not make sense" in call.params["text"]
    bot.wait_idle()
    assert any(
        r.levelname == "WARNING" and "actions.0.value" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    "body",
    [
        "payload=" + "not json",
        urlencode({"payload": json.dumps({"type": "block_actions"})}),
        urlencode({"payload": json.dumps(["a", "list"])}),
        "",
    ],
)
def test_garbage_payloads_never_get_a_500(bot, body) -> None:
    response = bot.post(body)
    assert response.status_code < 500


def test_view_submission_user_error_becomes_a_field_error(bot) -> None:
    payload = bot.view_submission_payload(
        "form",
        {"when": {"date": {"type": "datepicker", "selected_date": "2020-01-01"}}},
        user_id="UALICE",
    )
    response = bot.view_submission(payload)
    assert response.status_code == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"when": "Pick a date in the future."},
    }


def test_view_submission_error_without_field_lands_on_the_first_input(bot) -> None:
    blocks = [
        {"type": "section", "block_id": "intro", "text": {"type": "mrkdwn", "text": "hi"}},
        {
            "type": "input",
            "block_id": "note",
            "label": {"type": "plain_text", "text": "Note"},
            "element": {"type": "plain_text_input", "action_id": "v"},
        },
    ]
    payload = bot.view_submission_payload("form_nofield", {}, user_id="UALICE", blocks=blocks)
    response = bot.view_submission(payload)
    assert response.json() == {
        "response_action": "errors",
        "errors": {"note": "That plan changed meanwhile."},
    }


def test_retried_event_is_processed_once(bot, standin, engine) -> None:
    event = {"type": "app_mention", "user": "UALICE", "channel": "CGENERAL", "text": "<@UBOTPULSE>"}
    first = bot.event(event, event_id="EvSAME1")
    retry = bot.event(event, event_id="EvSAME1", retry_num=1)
    assert first.status_code == retry.status_code == 200
    bot.wait_idle()
    assert len(standin.wait_for("chat.postMessage")) == 1
    time.sleep(0.2)
    assert len(standin.calls("chat.postMessage")) == 1
    with Session(engine) as session:
        assert [e.event_id for e in session.exec(select(ProcessedEvent))] == ["EvSAME1"]


def test_healthz_answers_while_the_database_does(bot) -> None:
    response = bot.get("/healthz")
    assert response.status_code == 200


def test_healthz_is_503_when_the_database_is_down(settings) -> None:
    import asyncio

    import httpx

    from bot.entry.server import build_asgi_app
    from bot.services import Services
    from bot.slack.gateway import SlackGateway
    from storage.db import make_engine

    # Nothing listens on port 1: the database is really unreachable, no patching.
    down = settings.model_copy(update={"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/x"})
    services = Services(down, make_engine(down.database_url), SlackGateway.from_settings(down))
    transport = httpx.ASGITransport(app=build_asgi_app(services))

    async def get_healthz() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            return await client.get("/healthz")

    assert asyncio.run(get_healthz()).status_code == 503


def test_forged_event_touches_nothing(bot, standin, engine) -> None:
    body = json.dumps(
        {
            "type": "event_callback",
            "event_id": "EvFORGED",
            "team_id": "T0PLANPULSE",
            "event": {"type": "app_mention", "user": "UALICE", "channel": "CGENERAL", "text": "hi"},
        }
    )
    response = bot.post(body, content_type="application/json", signature="v0=" + "a" * 64)
    assert response.status_code == 401
    bot.wait_idle()
    assert standin.calls() == []
    with Session(engine) as session:
        assert list(session.exec(select(ProcessedEvent))) == []


def test_garbage_without_a_signature_is_still_401(bot) -> None:
    response = bot.post("payload=not json", signature="v0=" + "1" * 64)
    assert response.status_code == 401


def test_old_event_ids_can_be_forgotten(engine) -> None:
    from datetime import UTC, datetime, timedelta

    from storage.db import session_scope
    from storage.events import claim_event, forget_events

    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    with session_scope(engine) as session:
        assert claim_event(session=session, event_id="EvOLD", now=now - timedelta(days=2))
        assert claim_event(session=session, event_id="EvNEW", now=now)
        assert not claim_event(session=session, event_id="EvNEW", now=now)
    with session_scope(engine) as session:
        assert forget_events(session=session, before=now - timedelta(days=1)) == 1
    with session_scope(engine) as session:
        assert claim_event(session=session, event_id="EvOLD", now=now)
