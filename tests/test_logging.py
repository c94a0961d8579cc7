"""LOG_LEVEL and LOG_FORMAT as operators set them: the real CLI in a subprocess, its stderr parsed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx

from tests.slack_harness import SIGNING_SECRET, sign
from tests.test_server import Served, _serve
from tests.test_server import _env as serve_env
from tests.test_server import _free_port as free_port
from tests.test_server import _wait_healthy as wait_healthy

ROOT = Path(__file__).resolve().parent.parent


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`planpulse ARGS` with only the given settings (cwd is empty, so no developer's .env)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "DATABASE_URL", "PORT", "LOG_"))
    }
    clean.setdefault("DATABASE_URL", f"sqlite:///{tmp_path / 'planpulse.db'}")
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", *args],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), **clean},
        capture_output=True,
        text=True,
        timeout=120,
    )


def json_lines(stderr: str) -> list[dict[str, object]]:
    """Every stderr line, each of which must be one JSON object."""
    records = [json.loads(line) for line in stderr.splitlines()]
    assert all(isinstance(r, dict) for r in records)
    return records


# `export` on a new SQLite file logs the schema upgrade at INFO, then refuses (no plan yet).
UPGRADE_LINE = "Upgrading the SQLite schema"


def test_log_level_is_read(tmp_path) -> None:
    default = cli(tmp_path, "export", DATABASE_URL=f"sqlite:///{tmp_path / 'a.db'}")
    assert UPGRADE_LINE in default.stderr
    quiet = cli(
        tmp_path, "export", DATABASE_URL=f"sqlite:///{tmp_path / 'b.db'}", LOG_LEVEL="warning"
    )
    assert quiet.returncode == 2
    assert UPGRADE_LINE not in quiet.stderr
    assert quiet.stderr.strip().splitlines() == [
        "planpulse: The database holds no plan yet: import one first (planpulse import PATH)."
    ]


def test_verbose_still_means_debug(tmp_path) -> None:
    loud = cli(tmp_path, "-v", "export", LOG_LEVEL="ERROR")
    assert UPGRADE_LINE in loud.stderr and " DEBUG " in loud.stderr


def test_json_format_is_one_object_per_line(tmp_path) -> None:
    result = cli(tmp_path, "export", LOG_FORMAT="json")
    assert result.returncode == 2
    *logged, sentence = result.stderr.strip().splitlines()
    # The configuration or input problem stays the one plain sentence the CLI contract promises.
    assert sentence.startswith("planpulse: The database holds no plan yet")
    [upgrade] = [r for r in json_lines("\n".join(logged)) if UPGRADE_LINE in str(r["message"])]
    assert upgrade["level"] == "INFO" and upgrade["logger"] == "storage.db"
    assert set(upgrade) == {"time", "level", "logger", "message"}
    logged_at = datetime.fromisoformat(str(upgrade["time"]))
    assert logged_at.utcoffset() == timedelta(0)


def test_json_carries_the_traceback_as_a_field(tmp_path) -> None:
    # Nothing listens on port 1: the database is really unreachable, and `db upgrade` fails (exit 1).
    result = cli(
        tmp_path,
        "db",
        "upgrade",
        DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/x",
        LOG_FORMAT="JSON",
    )
    assert result.returncode == 1
    [failure] = [r for r in json_lines(result.stderr) if r["level"] == "ERROR"]
    assert failure["message"] == "planpulse db failed"
    assert failure["logger"] == "planpulse"
    assert str(failure["exc_info"]).startswith("Traceback (most recent call last)")
    assert "OperationalError" in str(failure["exc_info"])


def test_an_invalid_log_level_or_format_is_exit_2_in_one_sentence(tmp_path) -> None:
    for env, named in (
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ):
        # Even commands that never load the rest of the settings (validate, manifest) refuse.
        for args in (("validate", str(tmp_path / "none.yaml")), ("manifest",)):
            result = cli(tmp_path, *args, **env)
            assert result.returncode == 2, result.stderr
            [line] = result.stderr.strip().splitlines()
            assert line.startswith("planpulse: Invalid settings: ") and named in line, line
            assert "Traceback" not in result.stderr


def _serve_http(tmp_path: Path, standin, **env: str) -> tuple[int, str]:
    """Start `serve` in HTTP mode, wait until it answers /healthz, stop it: (status, stderr)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.entry.cli", "serve", "--no-scheduler", "--host", "127.0.0.1"],
        cwd=tmp_path,
        env=serve_env(
            tmp_path,
            DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
            SLACK_BOT_TOKEN=standin.workspace.bot_token,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=standin.api_url,
            PORT=str(port),
            **env,
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = Served(process, port)
    wait_healthy(served)
    return served.stop()


def test_serve_and_uvicorn_follow_log_level_and_format(tmp_path, standin) -> None:
    code, err = _serve_http(tmp_path, standin, LOG_FORMAT="json")
    assert code == 0, err
    records = json_lines(err)
    loggers = {r["logger"] for r in records}
    assert {"bot.entry.server", "uvicorn.error"} <= loggers, loggers
    code, err = _serve_http(tmp_path, standin, LOG_LEVEL="WARNING")
    assert code == 0, err
    assert "Uvicorn running" not in err and "PlanPulse listening" not in err
    assert err.strip() == "", err  # a healthy start has nothing to warn about


def test_tick_follows_log_level(tmp_path, standin) -> None:
    env = {"SLACK_BOT_TOKEN": standin.workspace.bot_token, "SLACK_API_URL": standin.api_url}
    talkative = cli(tmp_path, "tick", **env)
    assert talkative.returncode == 0 and "tick pulses:" in talkative.stderr
    quiet = cli(tmp_path, "tick", LOG_LEVEL="warning", **env)
    assert quiet.returncode == 0 and quiet.stderr == ""


UNUSED_TOKEN_WARNING = "`token` will be unused"


def test_building_the_bolt_app_warns_of_nothing(monkeypatch, services, caplog) -> None:
    # Deployments set SLACK_BOT_TOKEN in the environment, where Bolt looks for it too.
    monkeypatch.setenv("SLACK_BOT_TOKEN", services.settings.slack_bot_token.get_secret_value())
    from bot.entry.app import create_app

    with caplog.at_level(logging.DEBUG):
        app = create_app(services)
    assert UNUSED_TOKEN_WARNING not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert app.client is services.slack.client
    assert os.environ["SLACK_BOT_TOKEN"] == services.settings.slack_bot_token.get_secret_value()


# Fake secrets with the shapes of real ones: a bot token, an app-level token, a signing secret.
BOT_TOKEN = "xoxb-2718281828-3141592653-bTxQ9e8RkLvN0aZ1"
APP_TOKEN = "xapp-1-A0PLANPULSE-1618033988-9c4f1e2d7b6a"
SECRET = "5e1f0c3a9b7d4e2f8a6c1b3d5e7f9a0b"


def test_configured_secrets_and_token_shapes_never_reach_the_log(monkeypatch, capsys) -> None:
    from bot.entry.logging_setup import configured_logging
    from bot.settings import load_settings

    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", APP_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    load_settings()
    some_user_token = "xoxp-1234-5678-abcdef"
    for fmt in ("text", "json"):
        with configured_logging(level="DEBUG", fmt=fmt):
            log = logging.getLogger("planpulse.test")
            log.debug("headers %s", {"Authorization": f"Bearer {BOT_TOKEN}", "X": APP_TOKEN})
            log.info("pasted %s and %s", SECRET, some_user_token)
            try:
                raise RuntimeError(f"signing with {SECRET} failed")
            except RuntimeError:
                log.exception("failure carrying %s", BOT_TOKEN[:-1])  # a token cut short
        err = capsys.readouterr().err
        assert "[redacted]" in err and "RuntimeError: signing with" in err
        for secret in (BOT_TOKEN, BOT_TOKEN[:-1], APP_TOKEN, SECRET, some_user_token):
            assert secret not in err, (fmt, secret, err)


def test_serve_and_tick_at_debug_log_no_token_or_secret(tmp_path) -> None:
    """slack_sdk logs every request's headers at DEBUG: the Authorization header must not show."""
    from standin import StandIn, Workspace

    workspace = Workspace.default()
    workspace.bot_token, workspace.app_token = BOT_TOKEN, APP_TOKEN
    with StandIn(workspace) as standin:
        env = serve_env(
            tmp_path,
            DATABASE_URL=f"sqlite:///{tmp_path / 'debug.db'}",
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=standin.api_url,
            LOG_LEVEL="DEBUG",
        )
        logs = {}
        port = free_port()
        http = Served(_serve(tmp_path, env, "--port", str(port), "--host", "127.0.0.1"), port)
        wait_healthy(http)
        body = "command=%2Fplan&text=help&user_id=UALICE&channel_id=CGENERAL&team_id=T0PLANPULSE"
        answered = httpx.post(
            f"{http.url}/slack/events",
            content=body,
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                **sign(body, secret=SECRET),
            },
        )
        assert answered.status_code == 200
        logs["http"] = http.stop()[1]

        socket_mode = Served(
            _serve(tmp_path, {**env, "SLACK_APP_TOKEN": APP_TOKEN}, "--no-scheduler"), None
        )
        standin.wait_for_socket(timeout=30)
        standin.wait_for("apps.connections.open", timeout=10)
        logs["socket"] = socket_mode.stop()[1]

        # A database of its own, so that the tick's daily directory sync calls Slack again.
        tick_env = {k: v for k, v in env.items() if k in TICK_ENV}
        tick_env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'tick.db'}"
        logs["tick"] = cli(tmp_path, "tick", **tick_env).stderr

    for name, err in logs.items():
        assert "slack_sdk.web.base_client: Sending a request" in err, (name, err)
        for secret in (BOT_TOKEN, APP_TOKEN, SECRET):
            assert secret not in err, (name, secret)
    assert "Scheduler started" in logs["http"] and "Socket Mode" in logs["socket"]


TICK_ENV = ("SLACK_BOT_TOKEN", "SLACK_API_URL", "LOG_LEVEL")
