"""Renders the weekly digest: the parent message, one thread reply per section, or all in one.

Sections with nothing to list are left out; the three figure sections (discipline, drift,
calibration) are always there and say in one line when they have no data yet. Every message
stays within Block Kit's limits: lists are packed by `templates.answers.pack`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.digest.content import Digest
from templates import Trusted, render_json_object, render_mrkdwn
from templates.answers import MESSAGE_BLOCKS, pack, scorecard_lines

# Thread replies hold one list each; the parent holds the scorecard and the counts.
THREAD_SECTIONS = 20
PARENT_SECTIONS = 30
# /plan digest puts everything in one message of at most 50 blocks: a section of each list
# (about 15 lines, then "and N more"), a few of the scorecard.
PRIVATE_SECTIONS = 1
PRIVATE_SCORECARD_SECTIONS = 4


@dataclass(frozen=True)
class DigestMessages:
    parent: dict[str, Any]
    thread: list[dict[str, Any]]  # in posting order


def _lines(template: str, contexts: Iterable[dict[str, Any]]) -> Iterator[tuple[str, bool]]:
    for context in contexts:
        yield render_mrkdwn(f"blocks/digest/{template}", **context), True


def _message(
    section: str,
    lines: Iterator[tuple[str, bool]] | None,
    total: int,
    max_sections: int,
    *,
    intro: str | None = None,
    **context: Any,
) -> dict[str, Any]:
    packed = pack(lines or iter(()), total=total, max_sections=max_sections)
    return render_json_object(
        "blocks/digest/message.json.j2",
        section=section,
        intro=Trusted(intro) if intro else None,
        sections=packed.sections,
        more=packed.more,
        **context,
    )


def _thread_messages(digest: Digest, max_sections: int, now: datetime) -> list[dict[str, Any]]:
    messages = []
    if digest.initiatives:
        messages.append(
            _message(
                "initiatives",
                _lines("initiative_line.txt.j2", ({"i": i} for i in digest.initiatives)),
                len(digest.initiatives),
                max_sections,
            )
        )
    problems = [*(("missed", p) for p in digest.missed), *(("at_risk", p) for p in digest.at_risk)]
    if problems:
        messages.append(
            _message(
                "milestones",
                _lines(
                    "milestone_line.txt.j2",
                    (
                        {"f": p.facts, "days": p.days, "missed": kind == "missed"}
                        for kind, p in problems
                    ),
                ),
                len(problems),
                max_sections,
            )
        )
    if digest.waiting:
        messages.append(
            _message(
                "dependencies",
                _lines(
                    "dependency_line.txt.j2",
                    (
                        {
                            "d": d,
                            "waited": max((now - d.dependency.requested_at).days, 0)
                            if d.dependency.requested_at
                            else 0,
                            "overdue": d.dependency.ack_due_at is not None
                            and d.dependency.ack_due_at <= now,
                        }
                        for d in digest.waiting
                    ),
                ),
                len(digest.waiting),
                max_sections,
            )
        )
    if digest.decided or digest.open_polls:
        decided = _lines("decision_line.txt.j2", ({"d": d} for d in digest.decided))
        polls = _lines("poll_line.txt.j2", ({"p": p, "link": None} for p in digest.open_polls))
        messages.append(
            _message(
                "decisions",
                _chain(decided, polls),
                len(digest.decided) + len(digest.open_polls),
                max_sections,
            )
        )
    if digest.dark:
        messages.append(
            _message(
                "dark",
                _lines("dark_line.txt.j2", ({"initiative": i, "owner": o} for i, o in digest.dark)),
                len(digest.dark),
                max_sections,
            )
        )
    if digest.burnups:
        messages.append(
            _message(
                "burnup",
                _lines("burnup_line.txt.j2", ({"b": b} for b in digest.burnups)),
                len(digest.burnups),
                max_sections,
            )
        )
    messages.append(
        _message(
            "discipline",
            _lines("figure_line.txt.j2", ({"f": f} for f in digest.discipline)),
            len(digest.discipline),
            max_sections,
        )
    )
    if digest.drift:
        messages.append(
            _message(
                "drift",
                _lines("drift_line.txt.j2", ({"d": d} for d in digest.drift)),
                len(digest.drift),
                max_sections,
            )
        )
    else:
        messages.append(
            _message(
                "drift",
                None,
                0,
                max_sections,
                intro=render_mrkdwn("blocks/digest/figure_empty.txt.j2", which="drift", since=None),
            )
        )
    calibration = digest.calibration
    if calibration.milestones:
        intro = render_mrkdwn("blocks/digest/calibration_intro.txt.j2", c=calibration)
        lines = _lines("band_line.txt.j2", ({"b": b} for b in calibration.bands))
        messages.append(
            _message("calibration", lines, len(calibration.bands), max_sections, intro=intro)
        )
    else:
        empty = render_mrkdwn(
            "blocks/digest/figure_empty.txt.j2",
            which="calibration",
            since=calibration.quarter_start,
        )
        messages.append(_message("calibration", None, 0, max_sections, intro=empty))
    return messages


def _chain(*parts: Iterator[tuple[str, bool]]) -> Iterator[tuple[str, bool]]:
    for part in parts:
        yield from part


def _parent(digest: Digest, max_sections: int, *, thread: bool, private: bool) -> dict[str, Any]:
    card = digest.scorecard
    summary = render_mrkdwn(
        "blocks/digest/summary_line.txt.j2",
        health_counts=digest.health_counts(),
        missed=len(digest.missed),
        at_risk=len(digest.at_risk),
        waiting=len(digest.waiting),
        polls=len(digest.open_polls),
        dark=len(digest.dark),
    )
    return _message(
        "scorecard",
        scorecard_lines(card),
        card.kpi_count,
        max_sections,
        intro=summary or None,
        organization=digest.organization,
        first_day=digest.first_day,
        last_day=digest.last_day,
        thread=thread,
        private=private,
    )


def digest_messages(digest: Digest, now: datetime) -> DigestMessages:
    """The weekly post: the scorecard and counts in the parent, each section in its thread."""
    thread = _thread_messages(digest, THREAD_SECTIONS, now)
    return DigestMessages(
        parent=_parent(digest, PARENT_SECTIONS, thread=bool(thread), private=False), thread=thread
    )


def digest_private(digest: Digest, now: datetime) -> dict[str, Any]:
    """`/plan digest`: the whole digest in one ephemeral message of at most 50 blocks."""
    parent = _parent(digest, PRIVATE_SCORECARD_SECTIONS, thread=False, private=True)
    blocks = list(parent["blocks"])
    for message in _thread_messages(digest, PRIVATE_SECTIONS, now):
        if len(blocks) + len(message["blocks"]) > MESSAGE_BLOCKS:
            break  # cannot happen with today's budgets; kept so no answer is ever refused
        blocks.extend(message["blocks"])
    return {"text": parent["text"], "blocks": blocks}
