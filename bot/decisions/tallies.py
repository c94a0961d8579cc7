"""The tick's redraw of open polls' tallies: a vote saved but not drawn (a crash, a failed update) is shown.

`refresh_poll_message` compares what the message shows with what the database says and calls
Slack only when they differ, so a tick with nothing new costs one query per open poll and no
Slack call. Closed polls are redrawn by whoever closes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from bot.decisions.poll_message import refresh_poll_message
from bot.services import Services
from bot.slack.errors import SlackError
from storage.db import session_scope
from storage.decisions import posted_open_poll_ids

log = logging.getLogger(__name__)


@dataclass
class TallyReport:
    checked: int = 0
    redrawn: int = 0
    failed: list[int] = field(default_factory=list)


def redraw_tallies(services: Services, now: datetime) -> TallyReport:
    """Bring every posted open poll's message up to date; one poll's Slack error spares the rest."""
    del now  # what a message shows depends on the database only, not on the time
    with session_scope(services.engine) as session:
        poll_ids = posted_open_poll_ids(session)
    report = TallyReport(checked=len(poll_ids))
    for poll_id in poll_ids:
        try:
            if refresh_poll_message(services, poll_id):
                report.redrawn += 1
        except SlackError as exc:
            log.warning("Could not redraw the tally of poll %s: %s", poll_id, exc.code)
            report.failed.append(poll_id)
    return report
