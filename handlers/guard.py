"""Every area registers its listeners here, guarded: an exception after the ack is answered by us, never by Bolt.

Why: in slack-bolt 1.30's ThreadListenerRunner (HTTP mode, `process_before_response=False`), a
listener that calls `ack()` and then raises sends Bolt down a path that briefly sets the shared
response to a 500 and then resets `ack.response` to None, while the request thread is still
deciding what to send. Slack then sees a 500 or a 404 for a request that was acknowledged. So an
exception after the ack is caught inside the listener call, logged and answered politely by
`handlers.errors.answer_after_ack`; one raised before the ack still reaches `@app.error`, whose
reply rides on the ack (a command's ephemeral text, a modal's field errors).

Only Bolt's public API is used: each listener is registered with `app.command` / `app.action` /
`app.view` / `app.event`, wrapped in a plain function taking Bolt's documented `args: Args`
(every injectable argument in one object), which hands the listener the arguments it names.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable
from typing import Any, TypeVar

from slack_bolt import App, Args

from bot.services import Services
from handlers.errors import answer_after_ack

log = logging.getLogger(__name__)

Listener = TypeVar("Listener", bound=Callable[..., object])

# What Bolt can hand a listener: the attributes of its `Args` (listener arguments are by name).
INJECTABLE = frozenset(inspect.get_annotations(Args))


class GuardedApp:
    """The one way an area registers listeners: like `App`'s decorators, each listener guarded.

    The decorators return the listener itself, unchanged; Bolt holds the guard around it.
    """

    def __init__(self, app: App, services: Services) -> None:
        self._app = app
        self._services = services

    def command(self, command: str) -> Callable[[Listener], Listener]:
        return self._registering(self._app.command(command))

    def action(self, action_id: str | re.Pattern[str]) -> Callable[[Listener], Listener]:
        return self._registering(self._app.action(action_id))

    def view(self, callback_id: str) -> Callable[[Listener], Listener]:
        return self._registering(self._app.view(callback_id))

    def event(self, event_type: str) -> Callable[[Listener], Listener]:
        return self._registering(self._app.event(event_type))

    def _registering(self, bolt_register: Callable[..., Any]) -> Callable[[Listener], Listener]:
        def register(listener: Listener) -> Listener:
            bolt_register(guard_listener(listener, self._services))
            return listener

        return register


def guard_listener(listener: Callable[..., object], services: Services) -> Callable[[Args], object]:
    """`listener` behind a guard that takes Bolt's `args` and passes on the arguments it names."""
    wanted = _named_parameters(listener)

    def guard(args: Args) -> object:
        try:
            return listener(**{name: getattr(args, name) for name in wanted})
        except Exception as error:
            if args.ack.response is None:
                raise  # not acknowledged yet: @app.error answers in the ack itself
            _answer(services, error, args.body, args.context)
            return None

    # Bolt names the listener in its logs. Not functools.wraps: Bolt reads the arguments to
    # inject through inspect.unwrap, and `__wrapped__` would make it read the listener's own.
    guard.__name__ = getattr(listener, "__name__", guard.__name__)
    guard.__qualname__ = getattr(listener, "__qualname__", guard.__qualname__)
    guard.__doc__ = listener.__doc__
    return guard


def _named_parameters(listener: Callable[..., object]) -> list[str]:
    """The names `listener` asks for; one Bolt cannot give fails here, at registration."""
    names = []
    for parameter in inspect.signature(listener).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise TypeError(f"{listener!r}: Bolt passes arguments by name only ({parameter})")
        if parameter.name not in INJECTABLE:
            raise TypeError(f"{listener!r}: Bolt has no argument called {parameter.name!r}")
        names.append(parameter.name)
    return names


def _answer(services: Services, error: Exception, body: Any, context: Any) -> None:
    try:
        answer_after_ack(services, error, body, context)
    except Exception:
        # Nothing may escape after the ack (that is the race this module exists for); a failed
        # apology is a bug of its own, so it goes to the log with both tracebacks.
        log.exception("could not answer an error raised after the ack")
