"""The one logging set-up of every `planpulse` command: LOG_LEVEL, LOG_FORMAT, and no secret in any line."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from bot.redaction import RedactSecrets

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    what was there, which lets tests call `bot.entry.cli.main` many times in one process.
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
