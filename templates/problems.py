"""Words for problem codes: one catalogue for Slack (mrkdwn, escaped), one for the terminal.

`templates/problems/slack.yaml` and `templates/problems/cli.yaml` map each code (`area.what`) to
a one-sentence Jinja template over the problem's parameters. In the Slack catalogue every
parameter is escaped for mrkdwn, as in any block template.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Literal

import yaml
from jinja2 import meta

from bot.problems import Problem
from templates import _BLOCKS, _TEXT, TEMPLATE_DIR, render_mrkdwn_source, render_text_source

Surface = Literal["slack", "cli"]


@cache
def catalogue(surface: Surface) -> dict[str, str]:
    """Code → sentence template, as written in `templates/problems/<surface>.yaml`."""
    path = TEMPLATE_DIR / "problems" / f"{surface}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(code): str(sentence) for code, sentence in data.items()}


def parameters(code: str, surface: Surface) -> set[str]:
    """The parameters (and `field`) the code's sentence on `surface` uses."""
    environment = _BLOCKS if surface == "slack" else _TEXT
    return meta.find_undeclared_variables(environment.parse(catalogue(surface)[code]))


def say(problem: Problem, surface: Surface) -> str:
    """The sentence for one problem on `surface`."""
    source = catalogue(surface)[problem.code.value]
    params = {"field": problem.field, **problem.params}
    if surface == "slack":
        return render_mrkdwn_source(source, **params)
    return render_text_source(source, **params).strip()


def say_all(problems: Iterable[Problem], surface: Surface) -> str:
    """Several problems, one sentence each, one per line."""
    return "\n".join(say(problem, surface) for problem in problems)
