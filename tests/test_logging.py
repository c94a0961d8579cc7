"""LOG_LEVEL and LOG_FORMAT as operators set them: the real CLI in a subprocess, its stderr parsed."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from tests.slack_harness import SIGNING_SECRET
from tests.test_server import Served
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
        [sys.executable, "-m", "bot.cli", *args],
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
        [sys.executable, "-m", "bot.cli", "serve", "--no-scheduler", "--host", "127.0.0.1"],
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
    assert {"bot.server", "uvicorn.error"} <= loggers, loggers
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
    from bot.app import create_app

    with caplog.at_level(logging.DEBUG):
        app = create_app(services)
    assert UNUSED_TOKEN_WARNING not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert app.client is services.slack.client
    assert os.environ["SLACK_BOT_TOKEN"] == services.settings.slack_bot_token.get_secret_value()
