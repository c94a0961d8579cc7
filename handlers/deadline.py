"""Slack's 3 seconds: every request is acknowledged in time, by its listener or else by its deadline.

A listener that answers in the ack (a command's reply, a modal's field errors) normally wins.
When it cannot be ready in time (a busy replica, a slow query), one watcher thread acknowledges
the request empty at its deadline, counted from when the request arrived, and the listener's
answer then goes through the `response_url` (`answer`). Slack never sees a timeout, and Bolt
never gets to answer `404 unhandled request` for a listener still at work.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse

from bot.services import Services
from handlers.payload import payload_str

log = logging.getLogger(__name__)

# The request context key holding `time.monotonic()` when the request reached the server; set by
# the HTTP entry (the time queued before Bolt counts against Slack's 3 s too).
RECEIVED_AT = "planpulse_received_at"


class TimelyAck(Ack):
    """An `Ack` that answers once: the first call wins, whether the listener's or the deadline's.

    Past its deadline, whoever looks at `response` finds the deadline's empty ack, even when the
    watcher thread has not run yet: on a starved process Bolt's own wait for the ack (3 s) can
    wake before the watcher does, and would then give up and answer `404 unhandled request`
    (which handlers/errors.py words as "I do not answer /kpi"), for a listener still at work.
    """

    def __init__(self, deadline: float | None = None) -> None:
        self._response: BoltResponse | None = None
        super().__init__()  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        self.deadline = deadline  # time.monotonic() at which it acknowledges empty, if not before
        self.by_deadline = False  # True once the deadline acknowledged before the listener

    @property
    def response(self) -> BoltResponse | None:
        if (
            self._response is None
            and self.deadline is not None
            and time.monotonic() >= self.deadline
        ):
            self.expire()
        return self._response

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        self._response = value

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        with self._lock:
            if self._response is not None:
                return self._response  # too late: the caller's answer must go another way
            return super().__call__(*args, **kwargs)

    def expire(self) -> None:
        """The deadline passed: acknowledge empty, unless the listener already did."""
        with self._lock:
            if self._response is not None:
                return
            self.by_deadline = True
            super().__call__()


class DeadlineWatch:
    """One daemon thread that expires each registered ack at its deadline (a heap of them)."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, TimelyAck]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, ack: TimelyAck, deadline: float) -> None:
        with self._wake:
            heapq.heappush(self._heap, (deadline, next(self._order), ack))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="planpulse-ack-deadline", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, _, ack = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._heap)
            if ack.response is None:
                ack.expire()


_WATCH = DeadlineWatch()


def register(app: App, services: Services) -> None:
    """Give every request Slack waits on a `TimelyAck` with its deadline."""
    budget = services.settings.ack_deadline_seconds

    @app.use
    def ack_deadline(
        body: dict[str, Any], context: BoltContext, next: Callable[[], BoltResponse | None]
    ) -> BoltResponse | None:
        if isinstance(body, dict) and body.get("type") == "event_callback":
            return next()  # events are acknowledged by Bolt before their listener runs
        received = context.get(RECEIVED_AT)
        started = received if isinstance(received, float) else time.monotonic()
        ack = TimelyAck(deadline=started + budget)
        context["ack"] = ack
        _WATCH.watch(ack, started + budget)
        return next()


def ack_or_respond(
    ack: Ack, message: dict[str, Any], *, services: Services, body: dict[str, Any]
) -> None:
    """`message` in the ack, or, when the deadline acknowledged first, through the response_url."""
    ack(message)
    if isinstance(ack, TimelyAck) and ack.by_deadline:
        log.info("answered after the ack deadline, through the response_url")
        services.slack.respond(
            payload_str(body, "response_url"), text=message["text"], blocks=message.get("blocks")
        )
