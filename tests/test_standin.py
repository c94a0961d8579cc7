"""The stand-in itself: it must answer like Slack, including the refusals."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.request

import httpx

from standin import StandIn, Workspace


def _api(standin: StandIn, method: str, token: str | None = "xoxb-test", **params) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(f"{standin.api_url}{method}", data=params, headers=headers).json()


def test_form_and_json_bodies_and_tokens(standin) -> None:
    assert _api(standin, "auth.test")["user_id"] == "UBOTPULSE"
    assert _api(standin, "auth.test", token=None)["error"] == "not_authed"
    assert _api(standin, "auth.test", token="xoxb-other")["error"] == "invalid_auth"
    assert _api(standin, "apps.connections.open")["error"] == "invalid_auth"  # needs the xapp token
    assert _api(standin, "apps.connections.open", token="xapp-test")["url"].startswith("ws://")
    assert _api(standin, "no.such")["error"] == "unknown_method"
    posted = httpx.post(
        f"{standin.api_url}chat.postMessage",
        json={
            "channel": "#it-delivery",
            "text": "by name",
            "metadata": {"event_type": "t", "event_payload": {"a": 1}},
        },
        headers={"Authorization": "Bearer xoxb-test"},
    ).json()
    assert posted["ok"] and posted["channel"] == "CDELIVERY"
    calls = standin.calls()
    assert [c.method for c in calls][:2] == ["auth.test", "auth.test"]
    assert not calls[1].ok and calls[1].error == "not_authed"


def test_history_shows_metadata_only_when_asked_and_threads_apart(standin) -> None:
    parent = _api(
        standin,
        "chat.postMessage",
        channel="CDELIVERY",
        text="parent",
        metadata=json.dumps({"event_type": "planpulse_alert", "event_payload": {"id": 1}}),
    )
    _api(standin, "chat.postMessage", channel="CDELIVERY", text="reply", thread_ts=parent["ts"])
    plain = _api(standin, "conversations.history", channel="CDELIVERY")["messages"]
    assert [m["text"] for m in plain] == ["parent"] and "metadata" not in plain[0]
    assert plain[0]["reply_count"] == 1
    tagged = _api(
        standin, "conversations.history", channel="CDELIVERY", include_all_metadata="true"
    )
    assert tagged["messages"][0]["metadata"]["event_payload"] == {"id": 1}
    replies = _api(standin, "conversations.replies", channel="CDELIVERY", ts=parent["ts"])[
        "messages"
    ]
    assert [m["text"] for m in replies] == ["parent", "reply"]
    assert _api(standin, "conversations.history", channel="CRANDOM")["error"] == "not_in_channel"


def test_dm_by_user_id_and_conversations_open_agree(standin) -> None:
    posted = _api(standin, "chat.postMessage", channel="UCIO", text="hi")
    opened = _api(standin, "conversations.open", users="UCIO")
    assert posted["channel"] == opened["channel"]["id"]
    assert _api(standin, "conversations.open", users="UGONE")["error"] == "user_disabled"
    assert (
        _api(standin, "chat.postMessage", channel="UNOBODY", text="x")["error"]
        == "channel_not_found"
    )
    assert _api(standin, "chat.postMessage", channel="CDELIVERY")["error"] == "no_text"
    assert (
        _api(standin, "chat.postMessage", channel="CDELIVERY", text="x" * 40_001)["error"]
        == "msg_too_long"
    )


def test_invalid_blocks_explain_themselves(standin) -> None:
    answer = _api(
        standin,
        "chat.postMessage",
        channel="CDELIVERY",
        text="x",
        blocks=json.dumps([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]),
    )
    assert answer["error"] == "invalid_blocks"
    assert answer["response_metadata"]["messages"][0].startswith("[ERROR]")
    answer = _api(standin, "chat.postMessage", channel="CDELIVERY", text="x", blocks="not json")
    assert answer["error"] == "invalid_blocks"


def test_workspace_from_dict() -> None:
    workspace = Workspace.from_dict(
        {
            "team": {"id": "T1", "name": "Acme"},
            "bot": {"user_id": "UB", "token": "xoxb-acme"},
            "users": [{"id": "U1", "name": "ann", "email": "ann@acme.test", "tz": "Asia/Tokyo"}],
            "channels": [{"id": "C1", "name": "ops", "members": ["U1"], "bot": False}],
        }
    )
    assert workspace.users["U1"].tz == "Asia/Tokyo"
    assert not workspace.channels["C1"].bot_member
    assert workspace.user_by_email("ANN@acme.test").id == "U1"


def test_runs_as_a_module(tmp_path) -> None:
    workspace = tmp_path / "ws.yaml"
    workspace.write_text("bot: {token: xoxb-cli}\nusers: [{id: U1, name: ann}]\n")
    process = subprocess.Popen(
        [sys.executable, "-m", "standin", "--port", "0", "--workspace", str(workspace)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        url = line.split(" on ")[1].split(" ")[0]
        request = urllib.request.Request(
            f"{url}users.list", data=b"", headers={"Authorization": "Bearer xoxb-cli"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert [m["id"] for m in json.load(response)["members"]] == ["U1"]
    finally:
        process.terminate()
        assert process.wait(timeout=5) == 0


def test_wait_for_times_out_with_a_useful_message(standin) -> None:
    started = time.monotonic()
    try:
        standin.wait_for("chat.postMessage", timeout=0.2)
    except AssertionError as exc:
        assert "got 0" in str(exc)
    else:
        raise AssertionError("wait_for should have failed")
    assert time.monotonic() - started < 2


def test_malformed_arguments_are_an_error_answer_not_a_crash(standin) -> None:
    answer = _api(standin, "conversations.history", channel="CDELIVERY", oldest="soon")
    assert answer["error"] == "invalid_arguments"


def test_two_step_file_upload(standin) -> None:
    step = _api(standin, "files.getUploadURLExternal", filename="trend.png", length=4)
    assert httpx.post(step["upload_url"], content=b"\x89PNG").status_code == 200
    done = _api(
        standin,
        "files.completeUploadExternal",
        files=json.dumps([{"id": step["file_id"], "title": "Portal adoption"}]),
        channel_id="CDELIVERY",
    )
    assert done["files"][0]["title"] == "Portal adoption"
    [message] = standin.messages("CDELIVERY")
    assert message.files[0]["id"] == step["file_id"]
    assert standin.state.files[step["file_id"]].content == b"\x89PNG"


def test_wait_for_still_times_out_under_a_frozen_clock(standin) -> None:
    from freezegun import freeze_time

    with freeze_time("2026-11-23 09:00:00"):
        try:
            standin.wait_for("chat.postMessage", timeout=0.2)
        except AssertionError as exc:
            assert "got 0" in str(exc)
        else:
            raise AssertionError("wait_for should have failed")


def test_random_rate_limits_answer_a_share_of_calls_with_429(standin) -> None:
    def statuses(count: int) -> list[int]:
        out = []
        for _ in range(count):
            response = httpx.post(
                f"{standin.api_url}auth.test", headers={"Authorization": "Bearer xoxb-test"}
            )
            if response.status_code == 429:
                assert response.headers["Retry-After"] in {"0", "1"}
            out.append(response.status_code)
        return out

    standin.rate_limit_randomly(0.5, seed=3)
    limited = statuses(200).count(429)
    assert 60 < limited < 140
    standin.rate_limit_randomly(0)
    assert set(statuses(20)) == {200}


def test_faults_a_client_cannot_see_through(standin) -> None:
    """A reset before or after the call took effect, a late answer, a tier's 429, a revoked token."""
    standin.drop_next("chat.postMessage", landed=False)
    standin.drop_next("chat.postMessage", landed=True)
    for _ in range(2):
        try:
            _api(standin, "chat.postMessage", channel="CDELIVERY", text="x")
        except httpx.TransportError:
            pass
        else:
            raise AssertionError("the connection should have been reset")
    assert [m.text for m in standin.messages("CDELIVERY")] == ["x"]  # only the landed one
    assert [c.error for c in standin.calls("chat.postMessage")] == ["connection_reset"] * 2

    standin.delay_next("chat.postMessage", 0.5, landed=True)
    with contextlib.suppress(httpx.TimeoutException):
        httpx.post(
            f"{standin.api_url}chat.postMessage",
            data={"channel": "CDELIVERY", "text": "late"},
            headers={"Authorization": "Bearer xoxb-test"},
            timeout=0.1,
        )
    assert [m.text for m in standin.messages("CDELIVERY")] == ["x", "late"]  # landed already

    standin.rate_limit_tier("2", retry_after=1)
    response = httpx.post(
        f"{standin.api_url}conversations.list", headers={"Authorization": "Bearer xoxb-test"}
    )
    assert (response.status_code, response.headers["Retry-After"]) == (429, "1")
    assert _api(standin, "conversations.list")["ok"]  # once only

    standin.revoke_token()
    assert _api(standin, "auth.test")["error"] == "token_revoked"
    standin.workspace.bot_token = "xoxb-rotated"
    assert _api(standin, "auth.test", token="xoxb-rotated")["ok"]
    assert _api(standin, "auth.test")["error"] == "token_revoked"
