"""Read a YAML plan from PyYAML's C parser events; find any item's line again when a problem needs it.

`yaml.load` first composes a node tree (with two position marks per node) and only then builds the
data: on a 10 MB plan that is 15 s and over 500 MB here. Building plain data straight from the
C parser's events gives the same values in a fraction of the time and memory. Line numbers are
only needed to report problems, so a second event pass records them only when there are some.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml import events
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import ScalarNode

from bot.planfile.problems import Path, PlanProblems
from bot.planfile.problems import PlanProblemCode as Code
from bot.problems import Problem, problem

try:
    from yaml import _yaml

    _Parser: Any = _yaml.CParser
except ImportError:  # PyYAML built without libyaml: its pure-Python parser, same events, slower
    _Parser = None
_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = SafeConstructor()
_NO_KEY = object()


def _events(text: str) -> Any:
    """The parser's event stream: libyaml's C parser when available, PyYAML's own otherwise."""
    if _Parser is not None:
        parser = _Parser(text)
        while True:
            event = parser.get_event()
            yield event
            if isinstance(event, events.StreamEndEvent):
                return
    yield from yaml.parse(text, Loader=yaml.SafeLoader)


class _UnsupportedTag(ConstructorError):
    """A tag plain data never needs (!!python/name:…, a custom !thing): refused with its place."""

    def __init__(self, tag: str, mark: Any) -> None:
        super().__init__(None, None, tag, mark)
        self.tag = tag


def _scalar(event: events.ScalarEvent) -> Any:
    tag = event.tag
    if tag is None or tag == "!":
        # types-PyYAML leaves Resolver.resolve unannotated.
        tag = _RESOLVER.resolve(ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
    if tag == _STR:
        return event.value
    construct = _CONSTRUCTOR.yaml_constructors.get(tag)
    if construct is None:
        mark: Any = event.start_mark
        raise _UnsupportedTag(tag, mark)
    try:
        return construct(_CONSTRUCTOR, ScalarNode(tag, event.value))
    except ValueError:
        if tag == _TIMESTAMP:  # 2027-02-30 looks like a date to YAML but is none: say so later
            return event.value
        raise


def _build(label: str, text: str) -> tuple[Any, list[Problem]]:
    """Plain dicts, lists and scalars from the event stream, plus the problems it can live with."""
    problems: list[Problem] = []
    stack: list[tuple[Any, Any]] = []
    current: Any = None
    key: Any = _NO_KEY
    root: Any = None
    documents = 0
    for event in _events(text):
        kind = type(event)
        if kind is events.ScalarEvent:
            value = _scalar(event)
        elif kind is events.MappingStartEvent or kind is events.SequenceStartEvent:
            if event.anchor:
                raise _anchor_problem(label, event)
            stack.append((current, key))
            current, key = ({} if kind is events.MappingStartEvent else []), _NO_KEY
            continue
        elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
            value = current
            current, key = stack.pop()
        elif kind is events.AliasEvent:
            raise _anchor_problem(label, event)
        elif kind is events.DocumentStartEvent:
            documents += 1
            if documents > 1:
                line = event.start_mark.line + 1
                raise PlanProblems([problem(Code.YAML_MANY_DOCUMENTS, f"{label}, line {line}")])
            continue
        else:
            continue
        if kind is events.ScalarEvent and event.anchor:
            raise _anchor_problem(label, event)
        if current is None:
            root = value
        elif isinstance(current, dict):
            if key is _NO_KEY:
                if isinstance(value, dict | list):
                    line = event.start_mark.line + 1
                    raise PlanProblems([problem(Code.YAML_COMPLEX_KEY, f"{label}, line {line}")])
                key = value
            else:
                if key in current:
                    line = event.start_mark.line + 1
                    problems.append(
                        problem(Code.YAML_FIELD_TWICE, f"{label}, line {line}", name=key)
                    )
                current[key] = value
                key = _NO_KEY
        else:
            current.append(value)
    return root, problems


def _anchor_problem(label: str, event: Any) -> PlanProblems:  # event: a parser event
    # Aliases let a few lines expand into millions of items; plans never need them.
    line = event.start_mark.line + 1
    return PlanProblems([problem(Code.YAML_ANCHOR, f"{label}, line {line}")])


class YamlLocator:
    """Finds lines by replaying the parser's events, only once a problem asks for a place."""

    def __init__(self, label: str, text: str) -> None:
        self.label = label
        self._text = text
        self._lines: dict[Path, int] | None = None

    def line(self, path: Path) -> int:
        if self._lines is None:
            self._lines = _line_index(self._text)
        for cut in range(len(path), -1, -1):
            found = self._lines.get(tuple(path[:cut]))
            if found is not None:
                return found
        return 1

    def place(self, path: Path) -> str:
        return f"{self.label}, line {self.line(path)}"


def _line_index(text: str) -> dict[Path, int]:
    """The line where every value starts, by its path (field names as text, list positions)."""
    lines: dict[Path, int] = {}
    frames: list[list[Any]] = []  # per open collection: [its path, is_map, next index, pending key]
    starts = (events.ScalarEvent, events.MappingStartEvent, events.SequenceStartEvent)
    for event in _events(text):
        if isinstance(event, starts):
            if not frames:
                here: Path = ()
            else:
                frame = frames[-1]
                if frame[1]:  # in a mapping: a key first, then its value
                    if frame[3] is None:
                        frame[3] = (
                            str(event.value) if isinstance(event, events.ScalarEvent) else "?"
                        )
                        continue
                    here, frame[3] = (*frame[0], frame[3]), None
                else:
                    here, frame[2] = (*frame[0], frame[2]), frame[2] + 1
            mark: Any = event.start_mark
            lines.setdefault(here, mark.line + 1)
            if not isinstance(event, events.ScalarEvent):
                frames.append([here, isinstance(event, events.MappingStartEvent), 0, None])
        elif isinstance(event, events.MappingEndEvent | events.SequenceEndEvent):
            frames.pop()
    return lines


def read_yaml(label: str, text: str) -> tuple[dict[str, Any], YamlLocator, list[Problem]]:
    """Parse the text to plain data; syntax problems are raised with their line and column, the
    ones validation can live with (a field written twice) are returned to join the others."""
    try:
        data, problems = _build(label, text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{label}, line {mark.line + 1}, column {mark.column + 1}" if mark else label
        if isinstance(exc, _UnsupportedTag):
            raise PlanProblems([problem(Code.YAML_UNSUPPORTED_TAG, where, tag=exc.tag)]) from None
        raise PlanProblems([problem(Code.YAML_SYNTAX, where, detail=exc.problem)]) from None
    except yaml.YAMLError as exc:
        raise PlanProblems([problem(Code.YAML_SYNTAX, label, detail=str(exc))]) from None
    except (
        ValueError,
        TypeError,
    ) as exc:  # a value YAML recognises but cannot build, e.g. 1e999999
        raise PlanProblems([problem(Code.YAML_SYNTAX, label, detail=str(exc))]) from None
    if data is None:
        raise PlanProblems([problem(Code.EMPTY_FILE, label)])
    if not isinstance(data, dict):
        raise PlanProblems([problem(Code.TOP_LEVEL_NOT_MAPPING, f"{label}, line 1", given=data)])
    return data, YamlLocator(label, text), problems
