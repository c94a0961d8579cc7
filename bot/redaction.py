"""Secrets never reach a log line: Slack token shapes and the configured secrets are cut out."""

from __future__ import annotations

import logging
import re
import threading

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
