"""Read a YAML plan with PyYAML's C loader; find any item's line again when a problem needs it."""

from __future__ import annotations

from datetime import date
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.planfile.problems import Path, PlanProblems, Problem

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _PlanLoader(_BaseLoader):
    """Safe loading, plus: an impossible date stays text (so validation can say so), and a
    mapping key written twice is remembered (PyYAML would silently keep the last one)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[tuple[int, str]] = []

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _value in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value != "<<":
                if key_node.value in seen:
                    self.duplicate_keys.append((key_node.start_mark.line + 1, key_node.value))
                seen.add(key_node.value)
        return dict(super().construct_mapping(node, deep=deep))


def _lenient_timestamp(loader: _PlanLoader, node: ScalarNode) -> date | str:
    try:
        value: date | str = SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:  # 2027-02-30 looks like a date to YAML but is none
        return str(node.value)
    return value


_PlanLoader.add_constructor("tag:yaml.org,2002:timestamp", _lenient_timestamp)


class YamlLocator:
    """Composes the node tree only when a place is asked for: the happy path never pays for it."""

    def __init__(self, label: str, text: str) -> None:
        self.label = label
        self._text = text
        self._root: Node | None = None

    def line(self, path: Path) -> int:
        if self._root is None:
            self._root = yaml.compose(self._text, Loader=_BaseLoader)
        node = self._root
        for step in path:
            child = _child(node, step)
            if child is None:
                break
            node = child
        return int(node.start_mark.line) + 1 if node is not None else 1

    def place(self, path: Path) -> str:
        return f"{self.label}, line {self.line(path)}"


def _child(node: Node | None, step: str | int) -> Node | None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == str(step):
                return value_node
    if isinstance(node, SequenceNode) and isinstance(step, int) and 0 <= step < len(node.value):
        return node.value[step]
    return None


def read_yaml(label: str, text: str) -> tuple[dict[str, Any], YamlLocator, list[Problem]]:
    """Parse the text to plain data; syntax problems are raised with their line and column, the
    ones validation can live with (a field written twice) are returned to join the others."""
    loader = _PlanLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}, line {mark.line + 1}, column {mark.column + 1}" if mark else label
        raise PlanProblems([Problem(where, f"this is not valid YAML: {exc.problem}.")]) from None
    except yaml.YAMLError as exc:
        raise PlanProblems([Problem(label, f"this is not valid YAML: {exc}.")]) from None
    finally:
        loader.dispose()
    if data is None:
        raise PlanProblems(
            [Problem(label, "the file is empty; a plan needs at least organization and timezone.")]
        )
    if not isinstance(data, dict):
        raise PlanProblems(
            [
                Problem(
                    f"{label}, line 1",
                    "the top level must be a mapping of fields (organization:, timezone:, teams:, …), "
                    f"not a {_kind(data)}.",
                )
            ]
        )
    duplicates = [
        Problem(f"{label}, line {line}", f"the field {key!r} is written twice in the same item.")
        for line, key in loader.duplicate_keys
    ]
    return data, YamlLocator(label, text), duplicates


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    return "single value"
