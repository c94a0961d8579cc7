"""Slack's request signatures: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`, at most five minutes old.

`signature_problem` says why a request cannot be trusted, or None when Slack signed it. It never
raises: slack_sdk's `SignatureVerifier` raises on a timestamp that is not an integer, and an
exception there once reached the error handler as if the request had been verified.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence

MAX_AGE_SECONDS = 5 * 60  # Slack's own rule; Bolt rejects older requests the same way

# ASCII digits only: int() would also take " 17", "+17", "1_7" and other scripts' digits.
_TIMESTAMP = re.compile(r"[0-9]{1,12}", re.ASCII)
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}", re.ASCII)

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"


def signature_problem(
    *,
    secret: str | None,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float,
) -> str | None:
    """None when Slack signed exactly `body` less than five minutes before `now`; else the reason."""
    if not secret:
        return "no signing secret is configured"
    if timestamp is None:
        return "no timestamp header"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "the timestamp is not an integer"
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return "the timestamp is more than five minutes away"
    if signature is None:
        return "no signature header"
    if not _SIGNATURE.fullmatch(signature):
        return "the signature is malformed"
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return "the signature does not match"
    return None


def header_problem(
    *, secret: str | None, body: bytes, headers: Mapping[str, str | Sequence[str]], now: float
) -> str | None:
    """`signature_problem` for a request's headers (names in any case, values plain or Bolt's lists)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return signature_problem(
        secret=secret,
        body=body,
        timestamp=_first(lowered.get(TIMESTAMP_HEADER)),
        signature=_first(lowered.get(SIGNATURE_HEADER)),
        now=now,
    )


def _first(value: str | Sequence[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value[0] if value else None
