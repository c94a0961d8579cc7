"""Runtime settings from the environment or `.env`, validated once at start-up."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.errors import ConfigurationError
from bot.problems import ProblemCode, problem
from bot.redaction import keep_out_of_logs

SUPPORTED_DATABASE_SCHEMES = ("sqlite", "postgresql")
PLACEHOLDER_SECRETS = {"changethis", "xoxb-your-token", "xapp-your-token", "your-signing-secret"}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("text", "json")


class SettingsProblem(ProblemCode):
    """What can be wrong with the settings (the environment and .env)."""

    MISSING_SLACK = "settings.missing_slack"  # missing: the settings to set
    MISSING_BOT_CREDENTIALS = "settings.missing_bot_credentials"
    INVALID = "settings.invalid"  # errors: "NAME: pydantic's reason", one per setting


class LoggingSettings(BaseSettings):
    """How much to log and how: read by the CLI before any command, even one needing no other setting."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    log_level: str = "INFO"
    log_format: str = "text"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        return _one_of(
            value.strip().upper(), LOG_LEVELS, given=value, kind="log level", joiner=", "
        )

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        return _one_of(
            value.strip().lower(), LOG_FORMATS, given=value, kind="log format", joiner=" or "
        )


def _one_of(value: str, allowed: tuple[str, ...], *, given: str, kind: str, joiner: str) -> str:
    """`value` when it is one of `allowed`; else pydantic reports the reason under the setting."""
    if value not in allowed:
        raise ValueError(f"{given!r} is not a {kind}; use {joiner.join(allowed)}")
    return value


class Settings(LoggingSettings):
    """Everything PlanPulse reads from its environment (names are part of the deployment contract)."""

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    # The secrets of the trackers' webhooks (POST /webhooks/github, /webhooks/jira); a tracker
    # whose secret is unset is refused there.
    github_webhook_secret: SecretStr | None = None
    jira_webhook_secret: SecretStr | None = None
    database_url: str = "sqlite:///planpulse.db"

    kpi_command: str = "/kpi"
    plan_command: str = "/plan"
    decide_command: str = "/decide"
    pulse_command: str = "/pulse"

    pulse_grace_minutes: Annotated[float, Field(ge=0)] = 60
    reminder_after_hours: Annotated[float, Field(gt=0)] = 24
    escalate_after_hours: Annotated[float, Field(gt=0)] = 24
    working_hours: str = "09:00-18:00"
    working_days: str = "mon-fri"
    tick_seconds: Annotated[int, Field(ge=5)] = 60
    # New alert posts per channel per tick; the rest go into one summary message.
    alerts_per_channel_per_tick: Annotated[int, Field(ge=1, le=50)] = 5
    # Working hours (the owner's: Monday to Friday, 9 to 5) an owner has to frame a slip's options
    # before its decision poll opens with what is known.
    poll_framing_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 8
    port: Annotated[int, Field(ge=1, le=65535)] = 3000
    # Seconds after a request arrives at which it is acknowledged empty if its listener has not
    # answered yet (the answer then goes through its response_url): under Slack's 3 s, with room
    # for the network.
    ack_deadline_seconds: Annotated[float, Field(gt=0, lt=3)] = 2.0
    # Threads running listener work after the ack, per `serve` process.
    listener_threads: Annotated[int, Field(ge=1, le=64)] = 16

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"DATABASE_URL {value!r} is not a database URL") from exc
        if url.get_backend_name() not in SUPPORTED_DATABASE_SCHEMES:
            raise ValueError(
                f"DATABASE_URL scheme {url.get_backend_name()!r} is not supported; "
                "use sqlite:///path.db or postgresql+psycopg://user@host/db"
            )
        return value

    @field_validator("slack_bot_token", "slack_signing_secret", "slack_app_token")
    @classmethod
    def _no_placeholders(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError("is still the example placeholder; paste the real value from Slack")
        return value

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    def secret_values(self) -> list[str]:
        """Every secret setting's value (tokens, signing secret), for the log redaction."""
        values = (getattr(self, name) for name in type(self).model_fields)
        return [v.get_secret_value() for v in values if isinstance(v, SecretStr)]

    @property
    def socket_mode(self) -> bool:
        return self.slack_app_token is not None

    def require_slack(self) -> None:
        """Fail with one sentence naming what to set when Slack credentials are missing."""
        missing = []
        if self.slack_bot_token is None:
            missing.append("SLACK_BOT_TOKEN")
        if not self.socket_mode and self.slack_signing_secret is None:
            missing.append("SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN for Socket Mode)")
        if missing:
            raise ConfigurationError(problem(SettingsProblem.MISSING_SLACK, missing=missing))


AnySettings = TypeVar("AnySettings", bound=BaseSettings)


def load_settings(**overrides: object) -> Settings:
    """Build Settings, turning pydantic's report into one plain sentence per problem."""
    settings = _load(Settings, overrides)
    keep_out_of_logs(*settings.secret_values())
    return settings


def load_logging_settings() -> LoggingSettings:
    """LOG_LEVEL and LOG_FORMAT alone, so that `validate` still runs beside an unfinished .env."""
    return _load(LoggingSettings, {})


def _load(model: type[AnySettings], overrides: dict[str, object]) -> AnySettings:
    try:
        return model(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        ]
        raise ConfigurationError(problem(SettingsProblem.INVALID, errors=errors)) from None
