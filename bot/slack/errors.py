"""Typed Slack Web API failures, so callers decide by class instead of by error string."""

from __future__ import annotations


class SlackError(Exception):
    """A Web API call failed; `code` is Slack's error string (e.g. `channel_not_found`)."""

    def __init__(self, code: str, *, method: str = "", status: int | None = None) -> None:
        super().__init__(f"{method or 'Slack API'} failed: {code}")
        self.code = code
        self.method = method
        self.status = status


class ChannelNotFound(SlackError):
    """The channel does not exist, was archived, or the bot cannot see it."""


class NotInChannel(SlackError):
    """The bot is not a member of the channel: someone must `/invite` it."""


class UserNotFound(SlackError):
    """No such Slack user (unknown ID or e-mail)."""


class AccountInactive(SlackError):
    """The user is deactivated in Slack, so nothing can reach them."""


class InvalidAuth(SlackError):
    """The token is missing, wrong or revoked: a configuration problem, not a transient one."""


class InvalidBlocks(SlackError):
    """Slack refused the Block Kit payload: a template bug or a limit exceeded."""


class SlackUnavailable(SlackError):
    """5xx, a timeout, a dropped connection, or rate limits that outlasted the retries.

    `maybe_delivered` is True when the request reached Slack and no answer came back (a read
    timeout, a connection reset while waiting): Slack may have done it. An answer (5xx, 429) or
    a connection that failed before the request was sent means it did nothing.
    """

    def __init__(
        self,
        code: str,
        *,
        method: str = "",
        status: int | None = None,
        maybe_delivered: bool = False,
    ) -> None:
        super().__init__(code, method=method, status=status)
        self.maybe_delivered = maybe_delivered


_BY_CODE: dict[str, type[SlackError]] = {
    "channel_not_found": ChannelNotFound,
    "is_archived": ChannelNotFound,
    "not_in_channel": NotInChannel,
    "user_not_found": UserNotFound,
    "users_not_found": UserNotFound,
    "user_not_in_channel": UserNotFound,
    "account_inactive": AccountInactive,
    "user_disabled": AccountInactive,
    "invalid_auth": InvalidAuth,
    "not_authed": InvalidAuth,
    "token_revoked": InvalidAuth,
    "token_expired": InvalidAuth,
    "invalid_blocks": InvalidBlocks,
    "invalid_blocks_format": InvalidBlocks,
    "ratelimited": SlackUnavailable,
    "rate_limited": SlackUnavailable,
    "fatal_error": SlackUnavailable,
    "internal_error": SlackUnavailable,
    "service_unavailable": SlackUnavailable,
    "request_timeout": SlackUnavailable,
}


def classify(code: str, *, method: str, status: int | None = None) -> SlackError:
    """The typed exception for one Slack error string (5xx is always `SlackUnavailable`)."""
    if status is not None and status >= 500:
        return SlackUnavailable(code, method=method, status=status)
    if code == "invalid_arguments" and method.startswith("views."):
        return InvalidBlocks(code, method=method, status=status)  # Slack's answer to a bad view
    return _BY_CODE.get(code, SlackError)(code, method=method, status=status)
