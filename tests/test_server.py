"""`planpulse serve` as operators run it: a subprocess against the stand-in, in both modes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.slack_harness import SIGNING_SECRET, sign

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    def __init__(self, process: subprocess.Popen[str], port: int | None) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}" if port else ""

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _out, err = self.process.communicate()
        return self.process.returncode, err


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "PORT"))
    }
    env.update(values)
    return env


def _serve(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    # cwd is an empty folder, so a developer's .env cannot leak into the test.
    return subprocess.Popen(
        [sys.executable, "-m", "bot.entry.cli", "serve", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_healthy(served: Served, timeout: float = 30, *, status: int = 200) -> httpx.Response:
    """Poll GET /healthz until it answers `status` (200: up, database answering, socket connected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if served.process.poll() is not None:
            raise AssertionError(f"serve exited early: {served.process.communicate()[1]}")
        try:
            response = httpx.get(f"{served.url}/healthz", timeout=1)
            if response.status_code == status:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"serve's /healthz did not answer {status} within {timeout}s")


@pytest.fixture
def http_bot(tmp_path, database_url, standin) -> Iterator[Served]:
    port = _free_port()
    env = _env(
        tmp_path,
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=standin.api_url,
    )
    served = Served(
        _serve(tmp_path, env, "--port", str(port), "--host", "127.0.0.1", "--no-scheduler"), port
    )
    _wait_healthy(served)
    yield served
    served.stop()


def test_http_mode_serves_signed_requests_and_stops_cleanly(http_bot, standin) -> None:
    assert {"auth.test", "users.list"} <= {
        c.method for c in standin.calls()
    }  # token check, directory
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "x"})
    signed = httpx.post(
        f"{http_bot.url}/slack/events",
        content=body,
        headers={"Content-Type": "application/json", **sign(body)},
    )
    assert signed.status_code == 200 and "c-123" in signed.text
    unsigned = httpx.post(
        f"{http_bot.url}/slack/events", content=body, headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401
    code, err = http_bot.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert "will be unused" not in err  # slack_bolt's warning when given a client and a token


def test_sigterm_lets_acknowledged_work_finish(http_bot, standin) -> None:
    standin.delay_next("views.publish", 2.0)
    event = {
        "type": "event_callback",
        "event_id": "EvINFLIGHT",
        "team_id": "T0PLANPULSE",
        "api_app_id": "APLANPULSE",
        "event": {"type": "app_home_opened", "user": "UALICE", "tab": "home", "channel": "D1"},
    }
    body = json.dumps(event)
    response = httpx.post(
        f"{http_bot.url}/slack/events",
        content=body,
        headers={"Content-Type": "application/json", **sign(body)},
    )
    assert response.status_code == 200
    time.sleep(0.3)  # the listener is now waiting on the slow views.publish
    code, err = http_bot.stop()
    assert code == 0, err
    [publish] = standin.calls("views.publish")
    assert publish.ok and publish.params["user_id"] == "UALICE"


def test_scheduler_starts_with_serve(tmp_path, database_url, standin) -> None:
    port = _free_port()
    env = _env(
        tmp_path,
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=standin.api_url,
    )
    served = Served(_serve(tmp_path, env, "--port", str(port), "--host", "127.0.0.1"), port)
    _wait_healthy(served)
    code, err = served.stop()
    assert code == 0, err
    assert "Scheduler started" in err


def test_socket_mode_connects_and_handles_envelopes(tmp_path, database_url, standin) -> None:
    env = _env(
        tmp_path,
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-test",
        SLACK_API_URL=standin.api_url,
    )
    served = Served(_serve(tmp_path, env, "--no-scheduler"), None)
    try:
        standin.wait_for_socket(timeout=30)
        [opened] = standin.calls("apps.connections.open")
        assert opened.ok
        ack = standin.send_envelope(
            "events_api",
            {
                "type": "event_callback",
                "event_id": "EvSOCKET1",
                "team_id": "T0PLANPULSE",
                "api_app_id": "APLANPULSE",
                "event": {
                    "type": "app_home_opened",
                    "user": "UBOB",
                    "tab": "home",
                    "channel": "D2",
                },
            },
        )
        assert ack == {}
        standin.wait_for("views.publish", where=lambda c: c.params["user_id"] == "UBOB", timeout=10)
    finally:
        code, err = served.stop()
    assert code == 0, err
    assert "Socket Mode" in err
    assert "will be unused" not in err  # slack_bolt's warning when given a client and a token


def test_socket_mode_serves_healthz_on_port(tmp_path, database_url, standin) -> None:
    port = _free_port()
    env = _env(
        tmp_path,
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-test",
        SLACK_API_URL=standin.api_url,
        PORT=str(port),
    )
    served = Served(_serve(tmp_path, env, "--no-scheduler", "--host", "127.0.0.1"), port)
    try:
        assert _wait_healthy(served).text == "ok"
        assert standin.socket_connections()
        # Slack goes away: the socket closes and cannot be opened again.
        standin.stop()
        down = _wait_healthy(served, timeout=15, status=503)
        assert "Socket Mode" in down.text
    finally:
        code, err = served.stop()
    assert code == 0, err


def test_socket_mode_healthz_needs_the_database_too(settings, standin) -> None:
    import asyncio

    from slack_sdk import WebClient
    from slack_sdk.socket_mode import SocketModeClient

    from bot.entry.healthz import health_app
    from storage.db import make_engine

    socket = SocketModeClient(
        app_token=standin.workspace.app_token, web_client=WebClient(base_url=standin.api_url)
    )
    socket.connect()
    # Nothing listens on port 1: the database is really unreachable, no patching.
    engines = {
        "up": make_engine(settings.database_url),
        "down": make_engine("postgresql+psycopg://nobody@127.0.0.1:1/x"),
    }

    async def get_healthz(which: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=health_app(engines[which], socket))
        async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
            return await client.get("/healthz")

    try:
        assert socket.is_connected()
        assert asyncio.run(get_healthz("up")).status_code == 200
        down = asyncio.run(get_healthz("down"))
        assert down.status_code == 503 and down.text == "database unavailable"
    finally:
        socket.close()
        for engine in engines.values():
            engine.dispose()


@pytest.mark.parametrize("mode", ["http", "socket"])
def test_a_port_in_use_exits_2(tmp_path, database_url, standin, mode) -> None:
    tokens = (
        {"SLACK_APP_TOKEN": "xapp-test"}
        if mode == "socket"
        else {"SLACK_SIGNING_SECRET": SIGNING_SECRET}
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _env(
            tmp_path,
            DATABASE_URL=database_url,
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_API_URL=standin.api_url,
            **tokens,
        )
        process = _serve(
            tmp_path, env, "--no-scheduler", "--host", "127.0.0.1", "--port", str(port)
        )
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 2, err
    assert f"Cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    assert not standin.calls("apps.connections.open")  # it stopped before connecting to Slack


def test_missing_tokens_exit_2_and_say_what_to_set(tmp_path) -> None:
    env = _env(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}")
    process = _serve(tmp_path, env, "--no-scheduler")
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "SLACK_BOT_TOKEN" in err and "SLACK_SIGNING_SECRET" in err
    assert "planpulse manifest" in err and "Traceback" not in err


def test_a_rejected_token_exits_2(tmp_path, database_url, standin) -> None:
    env = _env(
        tmp_path,
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN="xoxb-revoked",
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=standin.api_url,
    )
    process = _serve(tmp_path, env, "--no-scheduler", "--port", str(_free_port()))
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "Slack rejected SLACK_BOT_TOKEN (invalid_auth)" in err and "Traceback" not in err
