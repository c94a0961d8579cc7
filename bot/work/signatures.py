"""Webhook signatures: HMAC-SHA256 of the raw body with the webhook's secret, compared in constant time.

GitHub sends it as `X-Hub-Signature-256: sha256=<hex>` (its legacy SHA-1 `X-Hub-Signature` is
not accepted); a Jira Cloud admin webhook with a secret sends `X-Hub-Signature: sha256=<hex>`.
"""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def signature_matches(*, secret: str, body: bytes, header: str | None) -> bool:
    """True when `header` is `sha256=` and the hex HMAC-SHA256 of `body` under `secret`."""
    if not secret or not header or not header.startswith(PREFIX):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header[len(PREFIX) :].strip().lower())


def sign(secret: str, body: bytes) -> str:
    """The header value a tracker sends for `body` (for the tests and the benchmark)."""
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
