"""The stand-in's workspace: users with timezones, channels with members, loaded from YAML or a dict."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

DEFAULT_WORKSPACE = Path(__file__).parent / "workspaces" / "default.yaml"


@dataclass
class User:
    id: str
    name: str
    real_name: str = ""
    email: str | None = None
    tz: str = "UTC"
    deleted: bool = False
    is_bot: bool = False
    is_admin: bool = False
    title: str = ""

    def as_member(self, team_id: str) -> dict[str, Any]:
        """The user object as users.list / users.info / users.lookupByEmail return it."""
        real_name = self.real_name or self.name
        profile: dict[str, Any] = {
            "real_name": real_name,
            "display_name": self.name,
            "real_name_normalized": real_name,
        }
        if self.email:
            profile["email"] = self.email
        if self.title:
            profile["title"] = self.title
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "real_name": real_name,
            "deleted": self.deleted,
            "is_bot": self.is_bot,
            "is_admin": self.is_admin,
            "tz": self.tz,
            "tz_label": self.tz,
            "profile": profile,
        }


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    bot_member: bool = True
    is_private: bool = False
    is_archived: bool = False

    def as_conversation(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_member": self.bot_member,
            "num_members": len(self.members) + (1 if self.bot_member else 0),
        }


@dataclass
class Workspace:
    """Who and what exists in the fake Slack, plus the tokens it accepts."""

    team_id: str = "T0PLANPULSE"
    team_name: str = "PlanPulse Test"
    domain: str = "planpulse-test"
    bot_user_id: str = "UBOTPULSE"
    bot_id: str = "BBOTPULSE"
    app_id: str = "APLANPULSE"
    bot_token: str = "xoxb-test"  # noqa: S105 - the stand-in's own fake token
    app_token: str = "xapp-test"  # noqa: S105
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workspace:
        team = data.get("team") or {}
        bot = data.get("bot") or {}
        workspace = cls(
            team_id=team.get("id", cls.team_id),
            team_name=team.get("name", cls.team_name),
            domain=team.get("domain", cls.domain),
            bot_user_id=bot.get("user_id", cls.bot_user_id),
            bot_id=bot.get("bot_id", cls.bot_id),
            app_id=bot.get("app_id", cls.app_id),
            bot_token=bot.get("token", cls.bot_token),
            app_token=bot.get("app_token", cls.app_token),
        )
        for raw in data.get("users") or []:
            workspace.add_user(User(**_known(User, raw)))
        for raw in data.get("channels") or []:
            raw = dict(raw)
            members = set(raw.pop("members", []) or [])
            bot_member = bool(raw.pop("bot", raw.pop("bot_member", True)))
            channel = Channel(members=members, bot_member=bot_member, **_known(Channel, raw))
            workspace.add_channel(channel)
        return workspace

    @classmethod
    def from_yaml(cls, path: str | Path) -> Workspace:
        return cls.from_dict(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {})

    @classmethod
    def default(cls) -> Workspace:
        """The workspace the test harness and the demo use (see workspaces/default.yaml)."""
        return cls.from_yaml(DEFAULT_WORKSPACE)

    def add_user(self, user: User) -> User:
        self.users[user.id] = user
        return user

    def add_channel(self, channel: Channel) -> Channel:
        self.channels[channel.id] = channel
        return channel

    def user_by_email(self, email: str) -> User | None:
        wanted = email.strip().lower()
        return next((u for u in self.users.values() if u.email and u.email.lower() == wanted), None)

    def channel_by_name(self, name: str) -> Channel | None:
        wanted = name.lstrip("#")
        return next((c for c in self.channels.values() if c.name == wanted), None)


def _known(kind: type, raw: dict[str, Any]) -> dict[str, Any]:
    """The fields the stand-in models; extra Slack fields in a workspace file are ignored."""
    if "id" not in raw or "name" not in raw:
        raise ValueError(f"a workspace {kind.__name__.lower()} needs an id and a name: {raw}")
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in raw.items() if k in names}
