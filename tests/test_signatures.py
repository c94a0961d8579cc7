"""Requests Slack did not sign, for every way a signature can fail: 401, and nothing else happens."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.errors import UserError
from bot.slack.signature import signature_problem
from tests.slack_harness import SIGNING_SECRET, row_counts, sign


def _add_test_listeners(app: Any) -> None:
    """Listeners that would answer through the response_url, had the request been Slack's."""

    @app.command("/later")
    def later(ack: Any) -> None:
        ack()
        raise UserError("That took a while and then failed.")

    @app.action("later_button")
    def later_button(ack: Any) -> None:
        ack()
        raise RuntimeError("a bug after the ack")


@pytest.fixture
def extra_listeners() -> list[Any]:
    return [_add_test_listeners]


def _hmac(body: str, timestamp: str, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _command(url: str) -> tuple[str, str]:
    form = {
        "command": "/later",
        "text": "",
        "user_id": "UALICE",
        "channel_id": "CGENERAL",
        "team_id": "T0PLANPULSE",
        "response_url": url,
        "trigger_id": "1.2.3",
    }
    return urlencode(form), "application/x-www-form-urlencoded"


def _click(url: str, action_id: str) -> tuple[str, str]:
    payload = {
        "type": "block_actions",
        "user": {"id": "UALICE", "team_id": "T0PLANPULSE"},
        "team": {"id": "T0PLANPULSE"},
        "channel": {"id": "CGENERAL"},
        "container": {"type": "message", "channel_id": "CGENERAL", "message_ts": "1.1"},
        "response_url": url,
        "trigger_id": "1.2.3",
        "actions": [{"action_id": action_id, "block_id": "b", "type": "button", "value": "7"}],
    }
    return urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"


def _event() -> tuple[str, str]:
    envelope = {
        "type": "event_callback",
        "event_id": "EvFORGED",
        "team_id": "T0PLANPULSE",
        "event": {"type": "app_home_opened", "user": "UALICE", "tab": "home", "channel": "D1"},
    }
    return json.dumps(envelope), "application/json"


REQUESTS: dict[str, Callable[[str], tuple[str, str]]] = {
    "command": _command,
    "known button": lambda url: _click(url, "later_button"),
    "unknown button": lambda url: _click(url, "gone_button"),
    "event": lambda url: _event(),
}


def _now() -> str:
    return str(int(time.time()))


# Each: the headers sent for `body`, in place of Slack's two signature headers.
SIGNATURES: dict[str, Callable[[str], dict[str, str]]] = {
    "no headers": lambda body: {},
    "no timestamp": lambda body: {"X-Slack-Signature": _hmac(body, _now())},
    "no signature": lambda body: {"X-Slack-Request-Timestamp": _now()},
    # The timestamps Bolt's verifier raised on, even with an HMAC made with the real secret.
    "blank timestamp": lambda body: {
        "X-Slack-Request-Timestamp": "",
        "X-Slack-Signature": _hmac(body, ""),
    },
    "timestamp abc": lambda body: {
        "X-Slack-Request-Timestamp": "abc",
        "X-Slack-Signature": _hmac(body, "abc"),
    },
    "timestamp 1.5": lambda body: {
        "X-Slack-Request-Timestamp": "1.5",
        "X-Slack-Signature": _hmac(body, "1.5"),
    },
    "random signature, timestamp abc": lambda body: {
        "X-Slack-Request-Timestamp": "abc",
        "X-Slack-Signature": "v0=" + "5e" * 32,
    },
    "stale": lambda body: sign(body, timestamp=int(time.time()) - 6 * 60),
    "in the future": lambda body: sign(body, timestamp=int(time.time()) + 6 * 60),
    "malformed signature": lambda body: {
        "X-Slack-Request-Timestamp": _now(),
        "X-Slack-Signature": "v0=not-hex",
    },
    "blank signature": lambda body: {"X-Slack-Request-Timestamp": _now(), "X-Slack-Signature": ""},
    "wrong signature": lambda body: {
        "X-Slack-Request-Timestamp": _now(),
        "X-Slack-Signature": "v0=" + "0" * 64,
    },
    "another app's secret": lambda body: {
        "X-Slack-Request-Timestamp": _now(),
        "X-Slack-Signature": _hmac(body, _now(), secret="someone-elses-signing-secret"),
    },
    "body changed after signing": lambda body: sign(body.replace("UALICE", "UBOB")),
}


@pytest.mark.parametrize("case", SIGNATURES)
def test_an_unverified_request_gets_401_and_causes_nothing(
    bot, standin, engine, internal_service, case
) -> None:
    before = row_counts(engine)
    for request_kind, build in REQUESTS.items():
        body, content_type = build(internal_service.url)
        response = bot.http.post(
            "/slack/events",
            content=body.encode(),
            headers={"Content-Type": content_type, **SIGNATURES[case](body)},
        )
        assert response.status_code == 401, request_kind
        assert "Traceback" not in response.text
    bot.wait_idle()
    time.sleep(0.05)  # anything sent after the ack would be on its way by now
    assert standin.calls() == []
    assert internal_service.received == []
    assert row_counts(engine) == before


def test_the_same_requests_signed_are_answered(bot, standin) -> None:
    """The control: what the cases above send is otherwise a request the bot acts on."""
    url = standin.new_response_url(user_id="UALICE", channel_id="CGENERAL")
    body, content_type = _command(url)
    response = bot.post(body, content_type=content_type)
    assert response.status_code == 200
    [reply] = standin.wait_for("response_url")
    assert reply.params["text"] == "That took a while and then failed."


@pytest.mark.parametrize(
    "timestamp",
    [
        "",
        "abc",
        "1.5",
        " 1700000000",
        "+1700000000",
        "1_700_000_000",
        "\u0661\u0667" + "\u0660" * 8,
        "9" * 40,
    ],
)
def test_a_timestamp_that_is_not_plain_digits_is_a_problem_not_an_exception(timestamp) -> None:
    problem = signature_problem(
        secret=SIGNING_SECRET,
        body=b"x",
        timestamp=timestamp,
        signature=_hmac("x", timestamp),
        now=1_700_000_000,
    )
    assert problem in ("the timestamp is not an integer",)


def test_a_good_signature_has_no_problem() -> None:
    stamp = "1700000000"
    good = _hmac("body", stamp)
    assert (
        signature_problem(
            secret=SIGNING_SECRET, body=b"body", timestamp=stamp, signature=good, now=1_700_000_299
        )
        is None
    )
    assert signature_problem(
        secret=SIGNING_SECRET, body=b"body", timestamp=stamp, signature=good, now=1_700_000_301
    ) == ("the timestamp is more than five minutes away")
    assert signature_problem(
        secret=None, body=b"body", timestamp=stamp, signature=good, now=1_700_000_000
    ) == ("no signing secret is configured")


def test_the_error_handler_ignores_a_request_bolt_could_not_verify(
    services, internal_service
) -> None:
    """Defence in depth: had bot/entry/server.py let it through, Bolt's verifier raises on "abc" and the
    error handler, not knowing the request is unverified, used to answer its response_url."""
    from slack_bolt import BoltRequest

    from bot.entry.app import create_app

    body, content_type = _command(internal_service.url)
    request = BoltRequest(
        body=body,
        headers={
            "content-type": content_type,
            "x-slack-request-timestamp": "abc",
            "x-slack-signature": _hmac(body, "abc"),
        },
    )
    response = create_app(services).dispatch(request)
    assert response.status == 401
    time.sleep(0.2)
    assert internal_service.received == []
