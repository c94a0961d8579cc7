"""The Slack gateway against the stand-in: typed results, typed errors, retries, pagination."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime

import pytest

from bot.slack.errors import (
    AccountInactive,
    ChannelNotFound,
    InvalidAuth,
    InvalidBlocks,
    NotInChannel,
    SlackError,
    SlackUnavailable,
    UserNotFound,
)
from bot.slack.gateway import MessageTag, SlackGateway, make_web_client
from standin import StandIn, User, Workspace

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "hello"}}


@pytest.fixture
def gateway(standin: StandIn) -> SlackGateway:
    return SlackGateway(make_web_client(token="xoxb-test", base_url=standin.api_url))


def test_post_to_a_user_id_lands_in_their_dm(gateway, standin) -> None:
    posted = gateway.post_message(channel="UALICE", text="Pulse time", blocks=[SECTION])
    assert posted.channel.startswith("D")
    [message] = standin.messages("UALICE")
    assert (message.ts, message.text, message.blocks) == (posted.ts, "Pulse time", [SECTION])


def test_tagged_posts_can_be_found_again(gateway, standin) -> None:
    start = datetime.now(UTC)
    gateway.post_message(channel="CDELIVERY", text="untagged")
    alert = gateway.post_message(
        channel="CDELIVERY", text="alert", tag=MessageTag("planpulse_alert", {"alert_id": 7})
    )
    gateway.post_message(
        channel="CDELIVERY", text="poll", tag=MessageTag("planpulse_poll", {"poll_id": 1})
    )
    found = gateway.find_tagged_messages(
        channel="CDELIVERY", event_type="planpulse_alert", oldest=start
    )
    assert [(m.ts, m.payload) for m in found] == [(alert.ts, {"alert_id": 7})]
    call = standin.calls("conversations.history")[-1]
    assert call.params["include_all_metadata"] in (True, "true", "1")


def test_tagged_search_reads_every_page(gateway, standin) -> None:
    for n in range(205):
        standin.state.chat_post_message({"channel": "CDELIVERY", "text": f"filler {n}"})
    tagged = gateway.post_message(
        channel="CDELIVERY", text="x", tag=MessageTag("planpulse_alert", {"alert_id": 1})
    )
    for n in range(5):
        standin.state.chat_post_message({"channel": "CDELIVERY", "text": f"after {n}"})
    standin.state.messages["CDELIVERY"].insert(0, standin.state.messages["CDELIVERY"].pop(205))
    found = gateway.find_tagged_messages(channel="CDELIVERY", event_type="planpulse_alert")
    assert [m.ts for m in found] == [tagged.ts]
    assert len(standin.calls("conversations.history")) == 2


def test_update_and_thread_reply(gateway, standin) -> None:
    parent = gateway.post_message(channel="CDECISIONS", text="Decide: delay or descope?")
    gateway.post_message(channel="CDECISIONS", text="I vote delay", thread_ts=parent.ts)
    gateway.update_message(
        channel=parent.channel, ts=parent.ts, text="Decided: delay", blocks=[SECTION]
    )
    messages = standin.messages("CDECISIONS")
    assert messages[0].text == "Decided: delay" and messages[0].edited
    assert messages[1].thread_ts == parent.ts


@pytest.mark.parametrize(
    ("channel", "error", "code"),
    [
        ("CNOPE", ChannelNotFound, "channel_not_found"),
        ("CRANDOM", NotInChannel, "not_in_channel"),
        ("COLD", ChannelNotFound, "is_archived"),
        ("UGONE", AccountInactive, "account_inactive"),
    ],
)
def test_post_errors_are_typed(gateway, channel, error, code) -> None:
    with pytest.raises(error) as raised:
        gateway.post_message(channel=channel, text="hi")
    assert raised.value.code == code
    assert raised.value.method == "chat.postMessage"


def test_invalid_blocks_are_refused(gateway, standin) -> None:
    with pytest.raises(InvalidBlocks):
        gateway.post_message(channel="CDELIVERY", text="x", blocks=[{"type": "section"}])
    with pytest.raises(InvalidBlocks):
        gateway.post_message(channel="CDELIVERY", text="x", blocks=[SECTION] * 51)
    long_button = {
        "type": "actions",
        "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x" * 76}}
        ],
    }
    with pytest.raises(InvalidBlocks):
        gateway.post_message(channel="CDELIVERY", text="x", blocks=[long_button])
    assert standin.messages("CDELIVERY") == []


def test_wrong_token_is_invalid_auth(standin) -> None:
    gateway = SlackGateway(make_web_client(token="xoxb-wrong", base_url=standin.api_url))
    with pytest.raises(InvalidAuth):
        gateway.auth_test()


def test_rate_limit_is_retried_after_retry_after(gateway, standin) -> None:
    standin.fail_next("chat.postMessage", status=429, retry_after=1)
    started = time.monotonic()
    gateway.post_message(channel="CDELIVERY", text="eventually")
    assert time.monotonic() - started >= 1.0
    assert [c.ok for c in standin.calls("chat.postMessage")] == [False, True]
    assert len(standin.messages("CDELIVERY")) == 1


def test_server_errors_are_retried_then_reported(gateway, standin) -> None:
    standin.fail_next("users.list", status=503, times=1)
    assert len(gateway.list_users()) == len(standin.workspace.users)
    standin.fail_next("users.list", status=500, times=10)
    with pytest.raises(SlackUnavailable) as raised:
        gateway.list_users()
    assert raised.value.status == 500
    assert len(standin.calls("users.list")) == 2 + 3  # first success path, then 1 try + 2 retries


def test_a_slack_error_string_is_typed_even_with_http_200(gateway, standin) -> None:
    standin.fail_next("chat.postMessage", status=200, error="channel_not_found")
    with pytest.raises(ChannelNotFound):
        gateway.post_message(channel="CDELIVERY", text="x")


def test_timeouts_and_refused_connections_are_unavailable(standin) -> None:
    slow = SlackGateway(make_web_client(token="xoxb-test", base_url=standin.api_url, timeout=1))
    standin.fail_next("auth.test", status=200, error="fatal_error", delay=1.5, times=3)
    with pytest.raises(SlackUnavailable):
        slow.auth_test()
    assert len(standin.wait_for("auth.test")) == 1  # a read timeout is not retried
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    nobody = SlackGateway(
        make_web_client(token="xoxb-test", base_url=f"http://127.0.0.1:{port}/api/")
    )
    with pytest.raises(SlackUnavailable):
        nobody.auth_test()


def test_users_are_listed_across_pages() -> None:
    workspace = Workspace.default()
    for n in range(450):
        workspace.add_user(
            User(id=f"UMANY{n:04d}", name=f"u{n}", email=f"u{n}@example.com", tz="Asia/Tokyo")
        )
    with StandIn(workspace) as standin:
        gateway = SlackGateway(make_web_client(token="xoxb-test", base_url=standin.api_url))
        users = gateway.list_users()
        assert len(users) == len(workspace.users)
        assert len(standin.calls("users.list")) == 3
    alice = next(u for u in users if u.id == "UALICE")
    assert (alice.email, alice.tz, alice.deleted, alice.real_name) == (
        "alice@northwind.example",
        "America/New_York",
        False,
        "Alice Archer",
    )
    assert next(u for u in users if u.id == "UGONE").deleted
    assert next(u for u in users if u.id == "UHELPER").is_bot


def test_lookup_by_email(gateway) -> None:
    assert gateway.lookup_user_by_email("CIO@northwind.example").id == "UCIO"
    with pytest.raises(UserNotFound):
        gateway.lookup_user_by_email("nobody@northwind.example")


def test_channels_list_skips_archived_and_says_membership(gateway) -> None:
    channels = {c.name: c for c in gateway.list_channels()}
    assert "old-project" not in channels
    assert channels["it-delivery"].is_member and not channels["random"].is_member


def test_views_open_update_and_home(gateway, standin) -> None:
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Pulse check"},
        "blocks": [SECTION],
    }
    view_id = gateway.open_view(trigger_id=standin.issue_trigger("UALICE"), view=modal)
    gateway.update_view(view_id=view_id, view={**modal, "blocks": [SECTION, SECTION]})
    assert len(standin.view(view_id)["blocks"]) == 2
    with pytest.raises(SlackError) as raised:
        gateway.update_view(view_id=view_id, view=modal, hash="stale")
    assert raised.value.code == "hash_conflict"
    with pytest.raises(SlackError) as raised:
        gateway.open_view(trigger_id="made-up", view=modal)
    assert raised.value.code == "invalid_trigger_id"
    gateway.publish_home(user_id="UBOB", view={"type": "home", "blocks": [SECTION]})
    assert standin.home("UBOB") == {"type": "home", "blocks": [SECTION]}


def test_expired_trigger_is_refused(gateway, standin) -> None:
    standin.state.trigger_ttl = 0.1
    trigger = standin.issue_trigger("UALICE")
    time.sleep(0.2)
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": [SECTION]}
    with pytest.raises(SlackError) as raised:
        gateway.open_view(trigger_id=trigger, view=modal)
    assert raised.value.code == "expired_trigger_id"


def test_oversized_modal_is_refused(gateway, standin) -> None:
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "x" * 25},
        "blocks": [SECTION],
    }
    with pytest.raises(InvalidBlocks):
        gateway.open_view(trigger_id=standin.issue_trigger(), view=modal)
    modal = {
        "type": "modal",
        "title": {"type": "plain_text", "text": "x"},
        "blocks": [SECTION] * 101,
    }
    with pytest.raises(InvalidBlocks):
        gateway.open_view(trigger_id=standin.issue_trigger(), view=modal)


def test_respond_uses_the_response_url(gateway, standin) -> None:
    url = standin.new_response_url(user_id="UALICE", channel_id="CGENERAL")
    gateway.respond(url, text="only you see this")
    gateway.respond(url, text="everyone sees this", response_type="in_channel")
    assert [e.text for e in standin.ephemerals("UALICE")] == ["only you see this"]
    assert [m.text for m in standin.messages("CGENERAL")] == ["everyone sees this"]
    for _ in range(3):
        gateway.respond(url, text="again")
    with pytest.raises(SlackError) as raised:
        gateway.respond(url, text="a sixth time")
    assert raised.value.code == "used_url"


def test_ephemeral_needs_the_user_in_the_channel(gateway, standin) -> None:
    gateway.post_ephemeral(channel="CDELIVERY", user="UALICE", text="psst")
    with pytest.raises(UserNotFound):
        gateway.post_ephemeral(channel="CDELIVERY", user="UCMO", text="psst")
    assert [e.text for e in standin.ephemerals("UALICE")] == ["psst"]


def test_tokens_never_reach_the_log(gateway, standin, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    gateway.post_message(channel="CDELIVERY", text="hi")
    standin.fail_next("auth.test", status=500, times=5)
    with pytest.raises(SlackUnavailable):
        gateway.auth_test()
    assert caplog.records
    assert not any("xoxb-test" in r.getMessage() for r in caplog.records)


def test_response_url_can_replace_or_delete_the_original_message(gateway, standin) -> None:
    posted = gateway.post_message(channel="UALICE", text="How is it going?", blocks=[SECTION])
    url = standin.new_response_url(
        user_id="UALICE", channel_id=posted.channel, message_ts=posted.ts
    )
    gateway.respond(url, text="Thanks, recorded: on track", replace_original=True)
    [message] = standin.messages("UALICE")
    assert (message.ts, message.text, message.edited) == (
        posted.ts,
        "Thanks, recorded: on track",
        True,
    )
    gateway.respond(url, text="gone", delete_original=True)
    assert standin.messages("UALICE") == []
    assert standin.ephemerals() == []


def test_per_channel_rate_limit_is_waited_out(gateway, standin) -> None:
    standin.rate_limit("chat.postMessage", per_channel_per_second=1)
    started = time.monotonic()
    gateway.post_message(channel="CDELIVERY", text="first")
    gateway.post_message(channel="CMARKETING", text="another channel: no wait")
    gateway.post_message(channel="CDELIVERY", text="second")
    assert time.monotonic() - started >= 1.0
    assert [m.text for m in standin.messages("CDELIVERY")] == ["first", "second"]
    assert [c.error for c in standin.calls("chat.postMessage")].count("ratelimited") == 1


def test_response_urls_go_only_to_slack_hosts() -> None:
    from bot.slack.gateway import response_url_origins, url_origin

    slack = response_url_origins("https://slack.com/api/")
    assert url_origin("https://hooks.slack.com/actions/T1/1/abc") in slack
    assert url_origin("https://HOOKS.slack.com:443/commands/T1/1/abc") in slack
    gov = response_url_origins("https://slack-gov.com/api/")
    assert url_origin("https://hooks.slack-gov.com/actions/T1/1/abc") in gov
    assert url_origin("https://hooks.slack.com/actions/T1/1/abc") in gov
    standin = response_url_origins("http://127.0.0.1:5001/api/")
    assert url_origin("http://127.0.0.1:5001/response/R1") in standin
    for elsewhere in (
        "http://127.0.0.1:5002/response/R1",  # another port on the same host: another service
        "http://hooks.slack.com/actions/T1/1/abc",  # not https
        "https://hooks.slack.com.evil.example/actions",
        "https://hooks.slack.com@evil.example/actions",
        "https://evil.example/?https://hooks.slack.com/",
        "https://hooks.slack.com:99999/x",
        "file:///etc/passwd",
        "",
    ):
        assert url_origin(elsewhere) not in slack | standin, elsewhere


def test_respond_drops_a_url_outside_slack_without_a_request(
    gateway, standin, internal_service, caplog
) -> None:
    gateway.respond(internal_service.url, text="only for Slack")
    assert internal_service.received == []
    assert standin.calls() == []
    [warning] = [r for r in caplog.records if "outside Slack" in r.getMessage()]
    assert warning.levelname == "WARNING"
    assert "token=hook" not in warning.getMessage()  # the URL's secret part is not logged
