"""The one logging set-up of every `planpulse` command: LOG_LEVEL, LOG_FORMAT, and no secret in any line."""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Slack's token shapes (bot xoxb-, user xoxp-, the others xox?-, app-level xapp-), whoever logs them.
TOKEN_SHAPE = re.compile(r"\b(xox[a-z]|xapp)-[0-9A-Za-z-]+")
REDACTED = "[redacted]"
# Shorter values are too likely to occur in ordinary text to be cut out of every line.
SHORTEST_SECRET = 8

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def keep_out_of_logs(*values: str) -> None:
    """From now on, these values (the configured secrets) are cut out of every log line."""
    with _secrets_lock:
        _secrets.update(v for v in values if len(v) >= SHORTEST_SECRET)


def redact(text: str) -> str:
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)  # a longer secret may contain a shorter
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return TOKEN_SHAPE.sub(lambda match: f"{match.group(1)}-{REDACTED}", text)


class RedactSecrets(logging.Filter):
    """On the handler, so that it sees every library's records, tracebacks included."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed logging call: the handler reports it as such
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatted once here, then every formatter reuses the redacted text.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (for log shippers): time in UTC, level, logger, message, exc_info."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


@contextmanager
def configured_logging(*, level: str, fmt: str) -> Iterator[None]:
    """Log to stderr at `level` ("INFO") in `fmt` ("text" or "json") while a command runs.

    Everything goes through this one root handler, uvicorn included (serve starts it with no
    logging config of its own), so every line has the same format. Leaving the block restores
    what was there, which lets tests call `bot.cli.main` many times in one process.
    """
    numeric = logging.getLevelNamesMapping()[level]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    # Alembic narrates every migration step at INFO; an operator wants to hear only of trouble.
    alembic = logging.getLogger("alembic")
    saved_levels = root.level, alembic.level
    root.addHandler(handler)
    root.setLevel(numeric)
    alembic.setLevel(numeric if numeric <= logging.DEBUG else max(numeric, logging.WARNING))
    logging.captureWarnings(True)  # a library's warning is one more log line, in the same format
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(saved_levels[0])
        alembic.setLevel(saved_levels[1])
