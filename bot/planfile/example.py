"""The example plan (Northwind Financial) with dates relative to today, and its Slack workspace."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined

HERE = Path(__file__).parent
PLAN_TEMPLATE = "northwind.yaml.j2"
WORKSPACE_FILE = HERE / "northwind_workspace.yaml"


def render_example_plan(today: date) -> str:
    """The plan as YAML text: `day(N)` in the template is N days after `today`."""
    environment = Environment(  # noqa: S701 - renders YAML data, not HTML
        loader=FileSystemLoader(HERE), undefined=StrictUndefined, keep_trailing_newline=True
    )
    template = environment.get_template(PLAN_TEMPLATE)
    return template.render(day=lambda offset: (today + timedelta(days=offset)).isoformat())


def example_workspace() -> dict[str, Any]:
    """Team, users (id, name, real_name, email, tz, title) and channels (id, name, members), in
    the stand-in's workspace format."""
    with WORKSPACE_FILE.open(encoding="utf-8") as handle:
        workspace: dict[str, Any] = yaml.safe_load(handle)
    return workspace


# The example's timezone: "today" for its relative dates is today there.
EXAMPLE_TIMEZONE = "America/New_York"
