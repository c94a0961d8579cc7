"""The Slack stand-in: a local Web API server with a fake workspace, for the tests and the demo."""

from standin.server import Call, StandIn
from standin.workspace import Channel, User, Workspace

__all__ = ["Call", "Channel", "StandIn", "User", "Workspace"]
