"""What the drivers (handlers, scheduler, CLI) hand to the core: settings, the database, Slack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from bot.settings import Settings

if TYPE_CHECKING:
    from bot.slack.gateway import SlackGateway


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: Engine
    slack: SlackGateway
