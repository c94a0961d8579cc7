"""Settings come from the environment or `.env`; a malformed one is one sentence and exit 2."""

from __future__ import annotations

import pytest

from bot.entry.cli import main
from bot.errors import ConfigurationError
from bot.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch, tmp_path):
    for name in (
        "DATABASE_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's checkout


def test_dotenv_is_read_and_tokens_stay_secret(tmp_path):
    (tmp_path / ".env").write_text(
        "SLACK_BOT_TOKEN=xoxb-123-secret\nSLACK_APP_TOKEN=xapp-1-abc\nSLACK_API_URL=http://127.0.0.1:9/api\n"
    )
    settings = load_settings()
    assert settings.slack_bot_token is not None
    assert settings.slack_bot_token.get_secret_value() == "xoxb-123-secret"
    assert "xoxb-123-secret" not in repr(settings)
    assert settings.socket_mode
    assert settings.slack_api_url == "http://127.0.0.1:9/api/"


def test_unknown_database_scheme_is_exit_2_with_one_sentence(monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", "mysql://root@localhost/plan")
    assert main(["export"]) == 2
    err = capsys.readouterr().err
    assert "DATABASE_URL" in err and "'mysql' is not supported" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_database_url_that_is_not_a_url_is_refused(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "planpulse.db")
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        load_settings()


def test_placeholder_token_is_refused(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-your-token")
    with pytest.raises(
        ConfigurationError, match="SLACK_BOT_TOKEN: is still the example placeholder"
    ):
        load_settings()


def test_missing_slack_tokens_name_what_to_set():
    settings = load_settings()
    with pytest.raises(ConfigurationError) as caught:
        settings.require_slack()
    assert (
        "SLACK_BOT_TOKEN" in caught.value.message and "planpulse manifest" in caught.value.message
    )
