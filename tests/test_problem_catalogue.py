"""Every problem code is worded in both catalogues (Slack and terminal), and every sentence has a code."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import bot
from bot.problems import Problem, ProblemCode
from templates.problems import catalogue, parameters, say

SURFACES = ("slack", "cli")


def all_codes() -> set[str]:
    # Codes are declared where their rules live: import the whole core to find every enum.
    for module in pkgutil.walk_packages(bot.__path__, "bot."):
        importlib.import_module(module.name)
    return {member.value for enum in ProblemCode.__subclasses__() for member in enum}


def sample(code: ProblemCode, surface: str) -> Problem:
    """The problem with a value for each parameter its sentence uses (found by parsing it)."""
    names = parameters(code.value, surface)  # parsed with the filters the sentence may use
    return Problem(code, "block_or_place", {name: f"<{name}&>" for name in names})


@pytest.mark.parametrize("surface", SURFACES)
def test_every_code_has_a_sentence_and_every_sentence_a_code(surface):
    assert set(catalogue(surface)) == all_codes()


@pytest.mark.parametrize("surface", SURFACES)
def test_every_sentence_renders_as_one_line(surface):
    all_codes()
    for enum in ProblemCode.__subclasses__():
        for code in enum:
            text = say(sample(code, surface), surface)
            assert text and "\n" not in text, code
            if surface == "slack":  # parameters are user text: escaped, never markup
                assert "<" not in text.replace("<!date", "").replace("<@", ""), (code, text)
