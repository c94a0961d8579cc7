"""A simulated quarter: the real bot, ticked through weeks of simulated time, with scripted people.

The clock starts at the import and moves from one moment to the next: a scheduler tick (every
`tick_every_hours`, and at each owner's pulse time and the digest's), or something a scripted
person does. After each moment the people read what the bot just posted (through the
stand-in, as a person reads Slack) and the scenario says what each will do, and when: answer a
pulse through its "Add details" modal, acknowledge and deliver a dependency, frame a slip,
vote, confirm a knock-on. Every act is a signed request to the real server.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

from sqlmodel import Session

from bot.entry.quarter.live import LiveBot, find_button
from bot.entry.quarter.scenario import Scenario
from bot.pulses.schedule import cadence, current_period, valid_cron
from bot.timezones import local_date, person_zone, plan_zone
from scheduler.tick import run_tick
from standin.server import Call
from storage.demo import everyone, initiatives_with_owners
from storage.dependencies import provider_member
from storage.models import (
    Alert,
    Dependency,
    Initiative,
    Kpi,
    Milestone,
    MilestoneStatus,
    Person,
    PlanSettings,
    PulseRequest,
)
from storage.reports import recent_readings
from templates.ids import (
    AlertKinds,
    DependencyIds,
    FollowThroughIds,
    FramingIds,
    MessageEvents,
    MilestoneIds,
    PollIds,
    PulseDetailsIds,
    PulseIds,
)

WEEK = timedelta(weeks=1)
DELIVER_AT = time(10, 0)  # a provider marks a dependency delivered at 10:00 on its day


class SimClock:
    """The bot's clock in the demo: the current simulated instant."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class Did:
    """Something a scripted person did: worded by the timeline's templates."""

    who: str  # the person's name
    what: (
        str  # answered_pulse | acknowledged | delivered | framed | voted | marked_done | confirmed
    )
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Moment:
    """One step of the quarter: a tick or an act, and the Web API calls it caused."""

    at: datetime
    calls: tuple[int, int]  # [first, end) indexes into the stand-in's call record
    tick: bool
    did: Did | None = None
    failed: dict[str, str] = field(default_factory=dict)  # tick steps that raised


@dataclass
class QuarterRun:
    start: datetime
    weeks: int
    moments: list[Moment]
    calls: list[Call]


@dataclass(order=True)
class _Act:
    at: datetime
    order: int
    run: Callable[[], Did | None] = field(compare=False)


def _event(call: Call) -> tuple[str | None, dict[str, Any]]:
    metadata = call.params.get("metadata")
    if isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None, {}
    if not isinstance(metadata, dict):
        return None, {}
    return metadata.get("event_type"), dict(metadata.get("event_payload") or {})


def _buttons(blocks: Any) -> Iterator[dict[str, Any]]:
    for block in blocks or []:
        if isinstance(block, dict) and block.get("type") == "actions":
            yield from (e for e in block.get("elements", []) if isinstance(e, dict))


class Quarter:
    """Runs one scenario against a live bot; `run()` returns every moment."""

    def __init__(self, bot: LiveBot, scenario: Scenario, clock: SimClock) -> None:
        self.bot = bot
        self.scenario = scenario
        self.clock = clock
        self.start = clock.now
        self.end = clock.now + scenario.weeks * WEEK
        self._acts: list[_Act] = []
        self._order = itertools.count()
        self._seen = 0
        self.moments: list[Moment] = []
        with self._session() as session:
            self.plan = session.get(PlanSettings, 1) or PlanSettings()
            people = everyone(session=session)
            self._silent = {p.slack_id for p in people if p.email in scenario.pulses.silent}
            self._votes = {
                p.slack_id: scenario.votes.leaders[p.email]
                for p in people
                if p.email in scenario.votes.leaders and p.slack_id
            }
            self._names = {p.slack_id: p.name for p in people if p.slack_id}
        standin = bot.standin
        # The bot posts DMs to a user ID or to the DM's own D… ID: either names the person.
        self._dm_of = {standin.dm_channel(u): u for u in standin.workspace.users}

    def _session(self) -> Session:
        return Session(self.bot.services.engine, expire_on_commit=False)

    # --- the clock ------------------------------------------------------------------------------

    def tick_times(self) -> list[datetime]:
        """Every `tick_every_hours` from the start, and each pulse and digest fire on the way."""
        every = timedelta(hours=self.scenario.tick_every_hours)
        times = {self.start + every * n for n in range(1, int((self.end - self.start) / every) + 1)}
        with self._session() as session:
            zones = {
                (cadence(initiative, self.plan), person_zone(owner.tz, self.plan.timezone).key)
                for initiative, owner in initiatives_with_owners(session=session)
            }
        if valid_cron(self.plan.digest):
            zones.add((self.plan.digest, plan_zone(self.plan.timezone).key))
        for expression, zone in zones:
            if expression is None:
                continue
            moment = self.start
            while moment < self.end:
                fire = current_period(expression, person_zone(zone, None), moment).end
                if fire <= self.end:
                    times.add(fire + timedelta(seconds=30))
                moment = fire + timedelta(seconds=1)
        return sorted(times)

    def run(self, progress: Callable[[datetime], None] | None = None) -> QuarterRun:
        ticks = self.tick_times()
        self._read_new_posts()
        tick_index = 0
        while tick_index < len(ticks) or self._acts:
            next_tick = ticks[tick_index] if tick_index < len(ticks) else None
            if self._acts and (next_tick is None or self._acts[0].at < next_tick):
                act = heapq.heappop(self._acts)
                if act.at >= self.end:
                    continue
                self._step(act.at, tick=False, run=act.run)
            else:
                assert next_tick is not None
                tick_index += 1
                self._step(next_tick, tick=True, run=None)
            if progress is not None:
                progress(self.clock.now)
        return QuarterRun(self.start, self.scenario.weeks, self.moments, self.bot.standin.calls())

    def _step(self, at: datetime, *, tick: bool, run: Callable[[], Did | None] | None) -> None:
        self.clock.now = at
        first = len(self.bot.standin.calls())
        did, failed = None, {}
        if tick:
            failed = run_tick(self.bot.services, at).failed
            self.bot.listeners.wait_idle()
        elif run is not None:
            did = run()
        self.moments.append(
            Moment(at, (first, len(self.bot.standin.calls())), tick, did, dict(failed))
        )
        self._read_new_posts()

    def _later(self, hours: float, run: Callable[[], Did | None]) -> None:
        at = self.clock.now + timedelta(hours=hours)
        heapq.heappush(self._acts, _Act(at, next(self._order), run))

    # --- reading Slack --------------------------------------------------------------------------

    def _read_new_posts(self) -> None:
        """What people see in what the bot posted since last time, and what each will do about it."""
        calls = self.bot.standin.calls()
        new, self._seen = calls[self._seen :], len(calls)
        for call in new:
            if call.method != "chat.postMessage" or not call.ok:
                continue
            channel = str(call.response.get("channel"))
            ts = str(call.response.get("ts"))
            to = str(call.params.get("channel"))
            to = self._dm_of.get(to, to)
            event, payload = _event(call)
            buttons = {b.get("action_id"): b for b in _buttons(call.params.get("blocks"))}
            if event == MessageEvents.PULSE_PROMPT and to not in self._silent:
                pulse_ids = [int(i) for i in str(payload.get("pulse_ids", "")).split(",") if i]
                self._later(
                    self.scenario.pulses.answer_after_hours,
                    partial(self._answer_pulses, channel, to, pulse_ids),
                )
            elif event == MessageEvents.DEPENDENCY_REQUEST and DependencyIds.ACKNOWLEDGE in buttons:
                self._dependency_request(channel, ts, int(payload.get("dependency_id", 0)))
            elif (
                event == MessageEvents.FRAMING
                and FramingIds.FRAME in buttons
                and to not in self._silent
            ):
                self._later(
                    self.scenario.pulses.answer_after_hours,
                    partial(self._frame, channel, to, buttons[FramingIds.FRAME]),
                )
            elif event == MessageEvents.POLL:
                for voter, option in self._votes.items():
                    self._later(
                        self.scenario.votes.after_hours,
                        partial(self._vote, channel, ts, voter, option),
                    )
            elif event == MessageEvents.ALERT and MilestoneIds.MARK_DONE in buttons:
                self._missed_alert(channel, ts, payload, buttons[MilestoneIds.MARK_DONE])
            if FollowThroughIds.STILL_ON_TRACK in buttons and to not in self._silent:
                button = buttons[FollowThroughIds.STILL_ON_TRACK]
                self._later(
                    self.scenario.knock_on.answer_after_hours,
                    partial(
                        self._click,
                        channel,
                        to,
                        FollowThroughIds.STILL_ON_TRACK,
                        str(button["value"]),
                        "confirmed",
                        {},
                    ),
                )

    # --- what people do -------------------------------------------------------------------------

    def _click(
        self,
        channel: str,
        user: str,
        action_id: str,
        value: str | None,
        what: str,
        details: dict[str, Any],
    ) -> Did | None:
        found = find_button(self.bot.standin.messages(channel), action_id, value)
        if found is None:
            return None  # the message moved on (answered, resolved): nothing left to press
        message, block_id, button = found
        payload = self.bot.slack.block_action_payload(
            action_id,
            button.get("value"),
            user_id=user,
            channel_id=channel,
            block_id=block_id,
            message=message,
            action=button,
        )
        self.bot.send(self.bot.slack.interaction(payload))
        return Did(self._names.get(user, user), what, details)

    def _opened_view(self, since: int) -> dict[str, Any] | None:
        for call in reversed(self.bot.standin.calls()[since:]):
            if call.method == "views.open" and call.ok:
                view_id = str((call.response.get("view") or {}).get("id"))
                view = self.bot.standin.view(view_id)
                return {**view, "id": view_id} if view else None
        return None

    def _submit(self, view: dict[str, Any], user: str, values: dict[str, Any]) -> bool:
        payload = self.bot.slack.view_submission_payload(
            str(view.get("callback_id")),
            values,
            user_id=user,
            private_metadata=str(view.get("private_metadata", "")),
            view_id=str(view["id"]),
        )
        reply = self.bot.send(self.bot.slack.interaction(payload))
        return reply.status == 200 and "errors" not in reply.text

    def _answer_pulses(self, channel: str, user: str, pulse_ids: list[int]) -> Did | None:
        answered: list[dict[str, Any]] = []
        for pulse_id in pulse_ids:
            since = len(self.bot.standin.calls())
            if self._click(channel, user, PulseIds.ADD_DETAILS, str(pulse_id), "", {}) is None:
                continue
            view = self._opened_view(since)
            if view is None:
                continue
            values, details = self._pulse_values(view, pulse_id)
            if self._submit(view, user, values):
                answered.append(details)
        if not answered:
            return None
        return Did(self._names.get(user, user), "answered_pulse", {"answers": answered})

    def _pulse_values(
        self, view: dict[str, Any], pulse_id: int
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The modal's state as the owner fills it in: status, confidence, drifting KPIs, done."""
        pulses = self.scenario.pulses
        today = local_date(self.clock.now, plan_zone(self.plan.timezone))
        with self._session() as session:
            pulse = session.get(PulseRequest, pulse_id)
            initiative = session.get(Initiative, pulse.initiative_id) if pulse else None
            key = initiative.key if initiative else ""
            own = pulses.initiatives.get(key)
            status = (own.status if own else None) or pulses.status
            confidence = (own.confidence if own else None) or pulses.confidence
            values: dict[str, Any] = {
                PulseDetailsIds.STATUS_BLOCK: {
                    PulseDetailsIds.STATUS: {
                        "type": "radio_buttons",
                        "selected_option": {"value": status},
                    }
                },
                PulseDetailsIds.CONFIDENCE_BLOCK: {
                    PulseDetailsIds.CONFIDENCE: {
                        "type": "static_select",
                        "selected_option": {"value": str(confidence)},
                    }
                },
            }
            kpis: dict[str, float] = {}
            done: list[str] = []
            for block in view.get("blocks", []):
                block_id = str(block.get("block_id", ""))
                if block_id.startswith(PulseDetailsIds.KPI_BLOCK_PREFIX):
                    kpi = session.get(
                        Kpi, int(block_id.removeprefix(PulseDetailsIds.KPI_BLOCK_PREFIX))
                    )
                    if kpi is None or kpi.key not in pulses.kpi_drift:
                        continue
                    value = round(self._latest(session, kpi) + pulses.kpi_drift[kpi.key], 2)
                    kpis[kpi.name] = value
                    values[block_id] = {
                        PulseDetailsIds.KPI: {"type": "number_input", "value": str(value)}
                    }
                elif block_id == PulseDetailsIds.DONE_BLOCK:
                    chosen = []
                    element = block.get("element") or {}
                    for option in element.get("options", []):
                        milestone = session.get(Milestone, int(option["value"]))
                        if milestone is not None and self._finishes(milestone, today):
                            chosen.append({"value": option["value"]})
                            done.append(milestone.title)
                    values[block_id] = {
                        PulseDetailsIds.DONE: {
                            "type": "multi_static_select",
                            "selected_options": chosen,
                        }
                    }
        details = {
            "initiative": initiative.title if initiative else "",
            "status": status,
            "confidence": confidence,
            "kpis": kpis,
            "done": done,
        }
        return values, details

    def _latest(self, session: Session, kpi: Kpi) -> float:
        found = recent_readings(session=session, kpi_ids=[kpi.id or 0], per_kpi=1)
        readings = found.get(kpi.id or 0)
        return readings[-1].value if readings else kpi.baseline

    def _finishes(self, milestone: Milestone, today: date) -> bool:
        """Done this week: due within the scenario's window, unless it is a slip not yet decided."""
        if milestone.status != MilestoneStatus.OPEN:
            return False
        if milestone.key in self.scenario.slips and milestone.due <= milestone.original_due:
            return False  # it slips; once a decision moved its date, it is finished by then
        return milestone.due <= today + timedelta(days=self.scenario.pulses.mark_done_within_days)

    def _dependency_request(self, channel: str, ts: str, dependency_id: int) -> None:
        with self._session() as session:
            dependency = session.get(Dependency, dependency_id)
            member = provider_member(session=session, dependency_id=dependency_id)
        if dependency is None or member is None or not member.slack_id:
            return
        if dependency.key in self.scenario.dependencies.never_acknowledged:
            return
        user = str(member.slack_id)
        self._later(
            self.scenario.dependencies.acknowledge_after_hours,
            lambda: self._click(
                channel,
                user,
                DependencyIds.ACKNOWLEDGE,
                str(dependency_id),
                "acknowledged",
                {"need": dependency.need},
            ),
        )
        if self.scenario.dependencies.deliver_on_needed_by:
            tz = plan_zone(self.plan.timezone)
            deliver = datetime.combine(dependency.needed_by, DELIVER_AT, tzinfo=tz)
            hours = max((deliver - self.clock.now).total_seconds() / 3600, 1.0)
            hours = max(hours, self.scenario.dependencies.acknowledge_after_hours + 1)
            self._later(
                hours,
                lambda: self._click(
                    channel,
                    user,
                    DependencyIds.DELIVERED,
                    str(dependency_id),
                    "delivered",
                    {"need": dependency.need},
                ),
            )

    def _frame(self, channel: str, user: str, button: dict[str, Any]) -> Did | None:
        since = len(self.bot.standin.calls())
        if self._click(channel, user, FramingIds.FRAME, str(button.get("value")), "", {}) is None:
            return None
        view = self._opened_view(since)
        if view is None:
            return None
        framing = self.scenario.framing
        today = local_date(self.clock.now, plan_zone(self.plan.timezone))
        proposed = today + timedelta(days=framing.delay_days)
        values: dict[str, Any] = {
            FramingIds.DATE_BLOCK: {
                FramingIds.DATE: {"type": "datepicker", "selected_date": proposed.isoformat()}
            },
            FramingIds.SCOPE_BLOCK: {
                FramingIds.SCOPE: {"type": "plain_text_input", "value": framing.scope_cut or None}
            },
            FramingIds.RESOURCES_BLOCK: {
                FramingIds.RESOURCES: {
                    "type": "plain_text_input",
                    "value": framing.resources or None,
                }
            },
        }
        if not self._submit(view, user, values):
            return None
        return Did(self._names.get(user, user), "framed", {"proposed": proposed})

    def _vote(self, channel: str, ts: str, voter: str, option: str) -> Did | None:
        messages = [m for m in self.bot.standin.messages(channel) if m.ts == ts]
        action_id = f"{PollIds.VOTE}:{option}"
        found = find_button(messages, action_id)
        if found is None:  # that option is not on this poll: the first one offered instead
            offered = [b for m in messages for b in _buttons(m.blocks)]
            votes = [b for b in offered if str(b.get("action_id", "")).startswith(PollIds.VOTE)]
            if not votes:
                return None  # closed already
            action_id = str(votes[0]["action_id"])
            option = action_id.split(":", 1)[1]
        did = self._click_in(messages, channel, voter, action_id)
        return Did(self._names.get(voter, voter), "voted", {"option": option}) if did else None

    def _click_in(self, messages: list[Any], channel: str, user: str, action_id: str) -> bool:
        found = find_button(messages, action_id)
        if found is None:
            return False
        message, block_id, button = found
        payload = self.bot.slack.block_action_payload(
            action_id,
            button.get("value"),
            user_id=user,
            channel_id=channel,
            block_id=block_id,
            message=message,
            action=button,
        )
        self.bot.send(self.bot.slack.interaction(payload))
        return True

    def _missed_alert(
        self, channel: str, ts: str, payload: dict[str, Any], button: dict[str, Any]
    ) -> None:
        """An owner who did finish the milestone (it is no slip) presses Mark done on its alert."""
        ids = [int(i) for i in str(payload.get("alert_ids", "")).split(",") if i.isdigit()]
        with self._session() as session:
            alerts = [session.get(Alert, i) for i in ids]
            milestone = session.get(Milestone, int(button.get("value") or 0))
            initiative = session.get(Initiative, milestone.initiative_id) if milestone else None
            owner = session.get(Person, initiative.owner_id) if initiative else None
        missed = any(a is not None and a.kind == AlertKinds.MILESTONE_MISSED for a in alerts)
        if not missed or milestone is None or owner is None or not owner.slack_id:
            return
        if milestone.key in self.scenario.slips or owner.slack_id in self._silent:
            return
        user, value = str(owner.slack_id), str(button.get("value"))
        self._later(
            self.scenario.pulses.answer_after_hours,
            lambda: self._click(
                channel,
                user,
                MilestoneIds.MARK_DONE,
                value,
                "marked_done",
                {"milestone": milestone.title},
            ),
        )
