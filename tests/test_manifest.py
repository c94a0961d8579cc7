"""The manifest: valid against Slack's schema, and its scopes are exactly what the code calls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from bot.entry.manifest import build_manifest, request_url_for
from bot.settings import load_settings
from bot.slack.gateway import CLIENT_HELPERS, METHOD_SCOPES

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = Path("/work/shared/slack/manifest.schema.1.0.0.json")
GATEWAY = ROOT / "bot" / "slack" / "gateway.py"
# A slack_sdk WebClient method name: `chat_postMessage` is the Web API method `chat.postMessage`.
CLIENT_CALL = re.compile(r"\bclient\.([a-z]+)_([A-Za-z]+(?:_[A-Za-z]+)*)\(")
# slack_sdk helpers that call several methods (`files_upload_v2`), found by their own name.
HELPER_CALL = re.compile(r"\bclient\.([a-z]+_[A-Za-z0-9_]+)\(")


def _methods_called(source: str) -> set[str]:
    called = {f"{family}.{name.replace('_', '.')}" for family, name in CLIENT_CALL.findall(source)}
    for helper in HELPER_CALL.findall(source):
        called.update(CLIENT_HELPERS.get(helper, ()))
    return called


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.entry.cli", "manifest", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture(scope="module")
def schema() -> dict:
    if not SCHEMA.exists():
        pytest.skip(f"{SCHEMA} is not on this machine")
    return json.loads(SCHEMA.read_text())


@pytest.mark.parametrize("args", [("--request-url", "https://bot.example.com"), ("--socket-mode",)])
def test_printed_manifest_validates(schema, args) -> None:
    result = _run(*args)
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    jsonschema.validate(manifest, schema)
    socket_mode = args == ("--socket-mode",)
    assert manifest["settings"]["socket_mode_enabled"] is socket_mode
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    urls = {c.get("url") for c in manifest["features"]["slash_commands"]}
    assert urls == ({None} if socket_mode else {"https://bot.example.com/slack/events"})


def test_commands_follow_settings_and_decide_joins_them() -> None:
    settings = load_settings(
        kpi_command="/nw-kpi",
        plan_command="/nw-plan",
        decide_command="/nw-decide",
        pulse_command="/nw-pulse",
    )
    manifest = build_manifest(settings, request_url=None)
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [
        "/nw-kpi",
        "/nw-plan",
        "/nw-decide",
        "/nw-pulse",
    ]


def test_gateway_table_lists_exactly_the_methods_it_calls() -> None:
    called = _methods_called(GATEWAY.read_text())
    assert called == set(METHOD_SCOPES), (
        f"called but not in METHOD_SCOPES: {sorted(called - set(METHOD_SCOPES))}; "
        f"listed but never called: {sorted(set(METHOD_SCOPES) - called)}"
    )


def test_manifest_scopes_are_exactly_what_the_methods_need() -> None:
    manifest = build_manifest(load_settings(), request_url=None)
    needed = {
        scope for method in _methods_called(GATEWAY.read_text()) for scope in METHOD_SCOPES[method]
    }
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed | {"commands"}


def test_no_other_module_calls_the_web_api() -> None:
    offenders = []
    for package in ("bot", "handlers", "scheduler", "storage", "templates"):
        for path in (ROOT / package).rglob("*.py"):
            if path == GATEWAY:
                continue
            if _methods_called(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == [], "only bot/slack/gateway.py may call the Slack Web API"


def test_bad_request_url_is_exit_2() -> None:
    result = _run("--request-url", "bot.example.com")
    assert result.returncode == 2
    assert "is not a URL" in result.stderr and "Traceback" not in result.stderr


def test_request_url_keeps_an_explicit_path() -> None:
    assert request_url_for("https://x.example/custom/path") == "https://x.example/custom/path"
    assert request_url_for("https://x.example/") == "https://x.example/slack/events"


def test_every_manifest_command_has_a_listener(bot) -> None:
    manifest = build_manifest(bot.services.settings, request_url=None)
    for command in manifest["features"]["slash_commands"]:
        response = bot.command(command["command"], "help", user_id="UALICE", channel_id="CGENERAL")
        assert response.status_code == 200, command["command"]
        assert "I do not answer" not in response.text, command["command"]
    bot.wait_idle()
    # What a command without a listener gets (handlers/errors.py), so the check above means it.
    unknown = bot.command("/not-in-the-manifest", user_id="UALICE")
    assert unknown.status_code == 200
    assert "I do not answer /not-in-the-manifest" in unknown.json()["text"]
