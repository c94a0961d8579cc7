"""What the drivers (handlers, scheduler, CLI) hand to the core: settings, the database, Slack, the clock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from bot.clock import utcnow
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.slack.gateway import SlackGateway


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    slack: SlackGateway
    # Read only where work takes long enough for the time to matter (a rate-limited fan-out
    # stamping its claims); everything else takes the `now` read once at the edge.
    clock: Callable[[], datetime] = utcnow
