"""Exceptions after the ack: Slack always gets its 200, the person a polite reply (handlers/guard.py)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.entry.app import create_app
from bot.errors import UserError
from handlers.guard import GuardedApp, guard_listener

REQUESTS = 200


def _add_failing_listeners(app: GuardedApp) -> None:
    """Listeners that ack and then fail, registered the way any area registers its own."""

    @app.action("guard_user_error")
    def user_error(ack: Any) -> None:  # asks for neither body nor response_url
        ack()
        raise UserError("That pulse was already answered & closed.")

    @app.action("guard_bug")
    def bug(ack: Any, action: dict[str, Any]) -> None:
        ack()
        raise RuntimeError(f"a bug after the ack ({action['value']})")

    @app.command("/guard-late")
    def late(ack: Any, command: dict[str, Any]) -> None:
        ack()
        raise UserError(f"No plan called {command['text']}.")

    @app.view("guard_form")
    def form(ack: Any) -> None:  # fails before the ack: the field error rides on the ack
        raise UserError("Pick a date in the future.", field="when")

    @app.event("app_mention")
    def mention(event: dict[str, Any]) -> None:  # no ack asked for: Bolt acks events itself
        raise RuntimeError(f"an event listener bug ({event['text']})")


@pytest.fixture
def extra_listeners() -> list[Any]:
    return [_add_failing_listeners]


def _press_many(bot: Any, action_id: str) -> list[int]:
    def press(n: int) -> int:
        payload = bot.block_action_payload(
            action_id, str(n), user_id="UALICE", channel_id="CDELIVERY"
        )
        return bot.action(payload).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(press, range(REQUESTS)))


def test_user_error_after_the_ack_is_always_a_200_and_a_polite_reply(bot, standin) -> None:
    statuses = _press_many(bot, "guard_user_error")
    assert statuses == [200] * REQUESTS
    replies = standin.wait_for("response_url", REQUESTS, 15)
    bot.wait_idle()
    assert len(standin.calls("response_url")) == REQUESTS
    assert {call.params["text"] for call in replies} == {
        "That pulse was already answered &amp; closed."
    }
    assert {call.params["user"] for call in replies} == {"UALICE"}


def test_bug_after_the_ack_is_always_a_200_an_apology_and_a_traceback(bot, standin, caplog) -> None:
    caplog.set_level(logging.ERROR)
    statuses = _press_many(bot, "guard_bug")
    assert statuses == [200] * REQUESTS
    replies = standin.wait_for("response_url", REQUESTS, 15)
    bot.wait_idle()
    assert all("went wrong" in call.params["text"] for call in replies)
    logged = [
        r for r in caplog.records if r.exc_info and "a bug after the ack" in str(r.exc_info[1])
    ]
    assert len(logged) == REQUESTS


def test_command_failing_after_the_ack_answers_through_its_response_url(bot, standin) -> None:
    for _ in range(10):
        response = bot.command("/guard-late", "moonshot", user_id="UBOB", channel_id="CDELIVERY")
        assert response.status_code == 200
    replies = standin.wait_for("response_url", 10)
    assert {call.params["text"] for call in replies} == {"No plan called moonshot."}


def test_error_before_the_ack_still_rides_on_the_ack(bot) -> None:
    payload = bot.view_submission_payload("guard_form", {}, user_id="UALICE")
    response = bot.view_submission(payload)
    assert response.status_code == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"when": "Pick a date in the future."},
    }


def test_click_inside_a_view_is_answered_by_dm(bot, standin) -> None:
    payload = bot.block_action_payload(
        "guard_user_error", "1", user_id="UBOB", view={"id": "V1", "type": "home"}
    )
    assert bot.action(payload).status_code == 200
    [dm] = standin.wait_for("chat.postMessage")
    assert dm.params["channel"] == "UBOB"
    assert dm.params["text"] == "That pulse was already answered &amp; closed."


def test_event_listener_bug_is_logged_and_nobody_is_messaged(bot, standin, caplog) -> None:
    response = bot.event({"type": "app_mention", "user": "UALICE", "text": "hi", "channel": "C1"})
    assert response.status_code == 200
    bot.wait_idle()
    assert any(r.exc_info and "event listener bug" in str(r.exc_info[1]) for r in caplog.records)
    assert standin.calls("chat.postMessage") == []


def test_every_listener_of_the_real_app_is_guarded(services) -> None:
    app = create_app(services)
    guard_code = guard_listener(lambda: None, services).__code__  # every guard shares it
    listeners = app._listeners  # Bolt's own list, read by a test only: what it will really call
    assert len(listeners) >= 7  # the pulse buttons, the modal, /pulse, /kpi, /plan, Home...
    assert all(x.ack_function.__code__ is guard_code for x in listeners)
    assert all(x.arg_names == ["args"] for x in listeners)  # Bolt's public `args: Args`
    assert {x.ack_function.__name__ for x in listeners} >= {"answer", "submit_details", "kpi"}


def test_a_listener_asking_for_what_bolt_cannot_give_fails_at_registration(services) -> None:
    def typo(ack: Any, bdoy: dict[str, Any]) -> None:
        ack()

    with pytest.raises(TypeError, match="no argument called 'bdoy'"):
        GuardedApp(create_app(services), services).action("typo")(typo)
