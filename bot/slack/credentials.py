"""Whether Slack has refused this process's bot token: one flag per gateway, set once, read by all.

A revoked or wrong token does not come back by itself: every later call would be refused the
same way. So the first refusal is logged loudly once, the gateway stops calling Slack, the tick
skips the steps that need it, and `/healthz` answers 503 with the reason. The flag lives in
memory on purpose: configuring a valid token means restarting the process, which starts clean.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from bot.problems import ProblemCode, problem
from templates.problems import say

log = logging.getLogger(__name__)

# Slack's answers that mean "this token cannot be used", whatever the method. `account_inactive`
# also answers a post to a deactivated user: the gateway asks auth.test which one it is.
TOKEN_REFUSALS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)


class CredentialsProblem(ProblemCode):
    """Why this process cannot talk to Slack at all."""

    REVOKED = "slack.credentials_revoked"  # error: Slack's error code, method: the refused call


@dataclass(frozen=True)
class Revocation:
    """The first refusal of the token: Slack's code, the method it answered, when (UTC)."""

    code: str
    method: str
    at: datetime

    def reason(self) -> str:
        """One line for an operator (the log, `/healthz`): what happened and what to do."""
        return say(problem(CredentialsProblem.REVOKED, error=self.code, method=self.method), "cli")


class SlackCredentials:
    """The shared "is the token still good" state of one gateway; thread-safe (Bolt's executor,
    the scheduler and the health probe read it at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._revoked: Revocation | None = None

    @property
    def revoked(self) -> Revocation | None:
        with self._lock:
            return self._revoked

    def revoke(self, *, code: str, method: str, at: datetime) -> Revocation:
        """Record that Slack refused the token; logged once, however many threads hit it."""
        with self._lock:
            first = self._revoked is None
            if first:
                self._revoked = Revocation(code=code, method=method, at=at)
            revocation = self._revoked
        assert revocation is not None
        if first:
            # The code and the method only: never the token, nor the request that carried it.
            log.critical("%s", revocation.reason())
        return revocation
