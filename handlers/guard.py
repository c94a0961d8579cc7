"""Guards every listener: an exception raised after its ack is answered here, never by Bolt.

Why: in slack-bolt 1.30's ThreadListenerRunner (HTTP mode, `process_before_response=False`), a
listener that calls `ack()` and then raises sends Bolt down a path that briefly sets the shared
response to a 500 and then resets `ack.response` to None, while the request thread is still
deciding what to send. Slack then sees a 500 or a 404 for a request that was acknowledged. So an
exception after the ack is caught inside the listener call, logged and answered politely by
`handlers.errors.answer_after_ack`; one raised before the ack still reaches `@app.error`, whose
reply rides on the ack (a command's ephemeral text, a modal's field errors).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt import App

from bot.services import Services
from handlers.errors import answer_after_ack

log = logging.getLogger(__name__)

# What the guard itself needs from Bolt, whatever the listener asks for (the context names the
# event this delivery claimed, which a failure gives back: handlers/middleware.py).
GUARD_ARGS = ("ack", "body", "context")


def guard_app(app: App, services: Services) -> None:
    """From now on, every listener registered on `app` (any kind, any module) is guarded.

    Bolt 1.x funnels every listener registration (command, action, view, event, shortcut,
    options, message...) through `App._register_listener`; wrapping that one method covers them
    all, including listeners a test adds later. tests/test_guard.py checks every listener of the
    real app is guarded, so a Bolt upgrade that moves this funnel fails loudly.
    """
    register = app._register_listener

    def register_guarded(functions: Sequence[Callable[..., Any]], *args: Any, **kwargs: Any) -> Any:
        ack_function, *lazy = list(functions)  # lazy listeners run after the ack, on their own
        return register([guarded(ack_function, services), *lazy], *args, **kwargs)

    app._register_listener = register_guarded  # type: ignore[method-assign]


def guarded(listener: Callable[..., Any], services: Services) -> Callable[..., Any]:
    """`listener`, with exceptions after its ack handled; Bolt injects what either needs."""
    if getattr(listener, "planpulse_guarded", False):
        return listener
    wanted = _named_parameters(listener)

    def guard(**kwargs: Any) -> Any:
        ack = kwargs["ack"]
        try:
            return listener(**{name: kwargs[name] for name in wanted})
        except Exception as error:
            if ack.response is None:
                raise  # not acknowledged yet: @app.error answers in the ack itself
            _answer(services, error, kwargs["body"], kwargs["context"])
            return None

    functools.update_wrapper(guard, listener)  # Bolt names the listener in its logs
    # Bolt reads the argument names to inject through inspect.unwrap + getfullargspec: drop the
    # `__wrapped__` link so it sees this signature (the listener's own, plus ack and body).
    del guard.__wrapped__  # type: ignore[attr-defined]
    guard.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            for name in [*wanted, *(name for name in GUARD_ARGS if name not in wanted)]
        ]
    )
    guard.planpulse_guarded = True  # type: ignore[attr-defined]
    return guard


def _named_parameters(listener: Callable[..., Any]) -> list[str]:
    """The names Bolt injects into `listener` (it passes every argument by name)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in inspect.signature(listener).parameters.values() if p.kind in kinds]


def _answer(services: Services, error: Exception, body: Any, context: Any) -> None:
    try:
        answer_after_ack(services, error, body, context)
    except Exception:
        # Nothing may escape after the ack (that is the race this module exists for); a failed
        # apology is a bug of its own, so it goes to the log with both tracebacks.
        log.exception("could not answer an error raised after the ack")
