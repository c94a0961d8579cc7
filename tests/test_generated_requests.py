"""Generated requests, signed and unsigned, thrown at the real server: it never fails, and forgeries do nothing.

Hypothesis builds payloads around the shapes Slack sends (commands, clicks, modal submissions,
shortcuts, suggestions, events) with any field replaced by arbitrary JSON, plus bodies that are
no payload at all. Each is sent to `POST /slack/events` through the real ASGI app under uvicorn,
signed with the app's secret or forged in one of the ways a signature can fail.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack.errors import SlackError
from templates.ids import PulseDetailsIds, PulseIds, QueryIds
from tests.slack_harness import row_counts, sign

EXAMPLES = 240

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
USERS = st.sampled_from(["UALICE", "UBOB", "UGONE", "UNOBODY", ""])
CHANNELS = st.sampled_from(["CGENERAL", "CDELIVERY", "CRANDOM", "DNOBODY", ""])
ACTION_IDS = st.sampled_from([*PulseIds, QueryIds.SHARE, "retired_button"]) | st.text(max_size=10)
CALLBACK_IDS = st.sampled_from([PulseDetailsIds.VIEW, QueryIds.HOME_VIEW, "retired"]) | st.text(
    max_size=10
)
COMMANDS = st.sampled_from(["/kpi", "/plan", "/pulse", "/decide", "/retired"])
TEXTS = st.sampled_from(
    ["", "help", "mine", "deps", "away 2026-01-01 2026-01-02", "back"]
) | st.text(max_size=20)


def _sometimes_junk(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly the real thing, one field in ten anything at all: where Bolt and listeners trip."""
    return st.integers(0, 9).flatmap(lambda n: JUNK if n == 0 else strategy)


def _payload(required: dict[str, Any], optional: dict[str, Any]) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {key: _sometimes_junk(value) for key, value in required.items()},
        optional={key: _sometimes_junk(value) for key, value in optional.items()},
    )


def _strategies(response_urls: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str, str]]:
    """(kind, content type, body) of one request as Slack could send it, or almost."""
    user = st.fixed_dictionaries({"id": USERS}, optional={"team_id": st.just("T0PLANPULSE")})
    team = st.fixed_dictionaries({"id": st.just("T0PLANPULSE")})
    action = _payload(
        {"action_id": ACTION_IDS},
        {
            "block_id": st.text(max_size=8),
            "type": st.just("button"),
            "value": st.sampled_from(["1", "7", "0", "x"]) | st.text(max_size=6),
        },
    )
    view = _payload(
        {
            "callback_id": CALLBACK_IDS,
            "type": st.sampled_from(["modal", "modal", "home", "workflow_step"]),
        },
        {
            "id": st.just("V1"),
            "private_metadata": st.sampled_from(['{"pulse_id": 1}', ""]) | st.text(max_size=10),
            "state": st.fixed_dictionaries({"values": JUNK}),
            "blocks": st.lists(JUNK, max_size=2),
        },
    )
    interaction = {
        "block_actions": _payload(
            {
                "type": st.just("block_actions"),
                "actions": st.lists(action, min_size=1, max_size=2) | st.just([]),
            },
            {
                "user": user,
                "team": team,
                "channel": st.fixed_dictionaries({"id": CHANNELS}),
                "container": st.fixed_dictionaries({"type": st.just("message")}),
                "response_url": response_urls,
                "trigger_id": st.just("1.2.3"),
                "view": view,
            },
        ),
        "view_submission": _payload(
            {"type": st.just("view_submission"), "view": view},
            {"user": user, "team": team, "response_urls": st.just([]), "trigger_id": st.just("1")},
        ),
        "view_closed": _payload({"type": st.just("view_closed"), "view": view}, {"user": user}),
        "shortcut": _payload(
            {"type": st.sampled_from(["shortcut", "message_action"]), "callback_id": CALLBACK_IDS},
            {"user": user, "response_url": response_urls, "trigger_id": st.just("1")},
        ),
        "suggestion": _payload(
            {"type": st.just("block_suggestion"), "action_id": ACTION_IDS},
            {"user": user, "value": st.text(max_size=5)},
        ),
        "other interaction": _payload(
            {
                "type": st.sampled_from(
                    ["interactive_message", "workflow_step_edit", "dialog_submission", "new_type"]
                )
            },
            {"callback_id": CALLBACK_IDS, "actions": st.lists(action, max_size=1), "user": user},
        ),
    }
    event = _payload(
        {
            "type": st.sampled_from(
                ["app_home_opened", "app_mention", "message", "reaction_added", "new_event"]
            )
        },
        {
            "user": USERS,
            "channel": CHANNELS,
            "tab": st.sampled_from(["home", "messages"]),
            "text": st.text(max_size=10),
            "bot_id": st.just("BBOTPULSE"),
        },
    )
    envelope = _payload(
        {"type": st.just("event_callback"), "event": event},
        {
            "event_id": st.text(min_size=1, max_size=10).map(lambda s: f"Ev{s}"),
            "team_id": st.just("T0PLANPULSE"),
            "authorizations": st.lists(
                st.fixed_dictionaries({"team_id": st.just("T0PLANPULSE")}), max_size=1
            ),
        },
    )
    command = st.fixed_dictionaries(
        {"command": COMMANDS, "text": TEXTS},
        optional={
            "user_id": USERS,
            "channel_id": CHANNELS,
            "team_id": st.just("T0PLANPULSE"),
            "response_url": response_urls,
            "trigger_id": st.just("1.2.3"),
        },
    )
    as_form = {
        name: strategy.map(lambda p, n=name: (n, "application/x-www-form-urlencoded", _form(p)))
        for name, strategy in interaction.items()
    }
    return st.one_of(
        *as_form.values(),
        command.map(lambda c: ("command", "application/x-www-form-urlencoded", urlencode(c))),
        envelope.map(lambda e: ("event", "application/json", json.dumps(e))),
        st.just(("url_verification", "application/json", '{"type": "url_verification"}')),
        JUNK.map(lambda j: ("json junk", "application/json", json.dumps(j))),
        JUNK.map(lambda j: ("payload junk", "application/x-www-form-urlencoded", _form(j))),
        st.text(max_size=40).map(lambda t: ("text junk", "application/x-www-form-urlencoded", t)),
        st.integers(1, 3000).map(_deeply_nested_user),
    )


def _deeply_nested_user(depth: int) -> tuple[str, str, str]:
    """An event whose `user` nests `depth` objects deep (one of issue 7's 500s at any depth)."""
    user = '{"id": ' * depth + '"UALICE"' + "}" * depth
    body = f'{{"type": "event_callback", "event_id": "EvDEEP{depth}", "event": {{"type": "app_home_opened", "user": {user}}}}}'
    return "deep event", "application/json", body


def _form(payload: Any) -> str:
    return urlencode({"payload": json.dumps(payload)})


def _forged(body: str, how: str) -> dict[str, str]:
    now = int(time.time())
    if how == "none":
        return {}
    if how == "timestamp abc":
        return {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=" + "1" * 64}
    if how == "blank":
        return {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": ""}
    if how == "stale":
        return sign(body, timestamp=now - 600)
    if how == "wrong":
        return {"X-Slack-Request-Timestamp": str(now), "X-Slack-Signature": "v0=" + "0" * 64}
    return sign(body + " ")  # signed, then the body changed


def _slack_refused(record: logging.LogRecord) -> bool:
    """Slack (the stand-in) refusing a generated trigger_id or user ID: logged on purpose, and
    from real Slack those IDs are real. Any other traceback is the bot failing on its input."""
    return bool(record.exc_info) and isinstance(record.exc_info[1], SlackError)


FORGERIES = ["none", "timestamp abc", "blank", "stale", "wrong", "altered"]


def test_generated_requests_never_fail_and_forgeries_do_nothing(
    bot, standin, engine, internal_service, caplog, record_property, capsys
) -> None:
    caplog.set_level(logging.INFO)
    response_urls = st.sampled_from(
        [
            internal_service.url,
            standin.new_response_url(user_id="UALICE", channel_id="CGENERAL"),
            "not a url",
            "file:///etc/passwd",
        ]
    )
    ran: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(request=_strategies(response_urls), forgery=st.none() | st.sampled_from(FORGERIES))
    def throw(request: tuple[str, str, str], forgery: str | None) -> None:
        kind, content_type, body = request
        before = row_counts(engine)
        calls_before = len(standin.calls())
        logged_before = len(caplog.records)
        headers = sign(body) if forgery is None else _forged(body, forgery)
        response = bot.http.post(
            "/slack/events",
            content=body.encode(),
            headers={"Content-Type": content_type, **headers},
        )
        assert "Traceback" not in response.text and 'File "' not in response.text
        bot.wait_idle()
        failures = [
            r.getMessage()
            for r in caplog.records[logged_before:]
            if (r.exc_info or r.levelno >= logging.ERROR) and not _slack_refused(r)
        ]
        assert failures == [], (kind, body)  # no traceback in the server log either
        after = row_counts(engine)
        if forgery is not None:
            assert response.status_code == 401, (kind, forgery, body)
            assert len(standin.calls()) == calls_before
            assert after == before
        else:
            assert response.status_code < 500, (kind, body, response.text)
            assert response.status_code != 404, (kind, body)
            # Only the claim of a new event_id; nothing of the plan, with an empty plan.
            after.pop("processed_event")
            before.pop("processed_event")
            assert after == before
        ran[f"{'signed' if forgery is None else 'unsigned'} {kind} -> {response.status_code}"] += 1

    throw()

    total = sum(ran.values())
    record_property("generated_requests", total)
    with capsys.disabled():
        print(f"\n{total} generated requests at POST /slack/events:")
        for outcome, count in sorted(ran.items()):
            print(f"  {count:4d}  {outcome}")
    assert total >= EXAMPLES // 2  # Hypothesis ran them, not skipped them
    assert internal_service.received == []  # no forged or foreign response_url was answered
    assert bot.get("/healthz").status_code == 200
