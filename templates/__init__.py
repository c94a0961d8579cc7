"""How things look in Slack and in the terminal: Jinja2 templates and the machinery that escapes them.

Block Kit templates (`blocks/*.json.j2`) render JSON. Every `{{ value }}` is escaped for mrkdwn
(`&`, `<`, `>`) and then for JSON by the environment's `finalize` hook, so plan and user text can
never ping a channel or break the payload; only values wrapped in `Trusted` (mentions, dates the
code itself built) pass through unescaped.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template

TEMPLATE_DIR = Path(__file__).parent


class Trusted(str):
    """Text the code built itself (a `<@U…>` mention, a `<!date^…>` token): not mrkdwn-escaped."""

    __slots__ = ()


class _RawJson(Trusted):
    """Already JSON (`|json` filter): inserted verbatim, for numbers and prebuilt structures."""

    __slots__ = ()


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters, as its docs require for user text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json_string_body(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _finalize_block_value(value: Any) -> str:
    if isinstance(value, _RawJson):
        return str(value)
    if value is None:
        return ""
    if isinstance(value, Trusted):
        return _json_string_body(str(value))
    if isinstance(value, bool | int | float):
        return _json_string_body(str(value))
    return _json_string_body(escape_mrkdwn(str(value)))


def _truncate(value: Any, limit: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _escaped_to(value: Any, limit: int) -> Trusted:
    """User text escaped for mrkdwn, then cut to `limit` characters of the escaped text (never
    inside an entity): a Block Kit limit then holds however many `&`, `<`, `>` the text has."""
    text = escape_mrkdwn("" if value is None else str(value))
    if len(text) <= limit:
        return Trusted(text)
    cut = text[: max(limit - 1, 0)]
    entity = cut.rfind("&")
    if entity != -1 and ";" not in cut[entity:]:
        cut = cut[:entity]
    return Trusted(cut + "…")


def _mention(slack_id: str | None) -> Trusted | str:
    return Trusted(f"<@{slack_id}>") if slack_id else "someone"


def _date_token(day: Any, fallback_format: str = "%Y-%m-%d") -> Trusted:
    """A date Slack renders in the reader's own timezone, with a plain fallback."""
    from datetime import UTC, date, datetime, time

    if isinstance(day, str):  # stored facts keep dates as ISO text
        day = date.fromisoformat(day) if len(day) == 10 else datetime.fromisoformat(day)
    if isinstance(day, datetime):
        moment = day
    elif isinstance(day, date):
        moment = datetime.combine(day, time(12, 0), tzinfo=UTC)
    else:
        raise TypeError(f"not a date: {day!r}")
    return Trusted(
        f"<!date^{int(moment.timestamp())}^{{date_short}}|{moment.strftime(fallback_format)}>"
    )


def _moment_token(moment: Any) -> Trusted:
    """An instant (a poll's deadline) as Slack renders it in the reader's timezone: day and time."""
    from datetime import datetime

    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if not isinstance(moment, datetime):
        raise TypeError(f"not an instant: {moment!r}")
    return Trusted(
        f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|"
        f"{moment.strftime('%Y-%m-%d %H:%M UTC')}>"
    )


def _number(value: Any, spec: str = "g") -> str:
    """A number in `spec` (`format()`'s mini-language: 20.0 → "20"); anything else as it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def _common_globals(env: Environment) -> None:
    env.filters["truncate_to"] = _truncate
    env.filters["escaped_to"] = _escaped_to
    env.filters["number"] = _number
    env.filters["repr"] = repr  # a value as Python writes it: 'text' quoted, numbers and lists bare
    env.filters["mention"] = _mention
    env.filters["slack_date"] = _date_token
    env.filters["slack_moment"] = _moment_token
    env.filters["trusted"] = Trusted


def _make_block_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        undefined=StrictUndefined,
        finalize=_finalize_block_value,
        autoescape=False,  # noqa: S701 - escaping is done by finalize, for mrkdwn+JSON not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    _common_globals(env)
    # tojson yields a complete JSON value (numbers, lists); mark it so finalize leaves it alone.
    env.filters["json"] = lambda value: _RawJson(json.dumps(value, ensure_ascii=False))
    return env


def _make_text_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        undefined=StrictUndefined,
        autoescape=False,  # noqa: S701 - terminal text, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    _common_globals(env)
    return env


_BLOCKS = _make_block_environment()
_TEXT = _make_text_environment()


def render_json(name: str, **context: Any) -> Any:
    """Render a `*.json.j2` template to a Python value (blocks list, view dict, message payload)."""
    source = _BLOCKS.get_template(name).render(**context)
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:  # a template bug, never user input: say where
        raise ValueError(f"template {name} rendered invalid JSON: {exc}\n{source}") from exc


def render_json_object(name: str, **context: Any) -> dict[str, Any]:
    """Render a `*.json.j2` template that must be one JSON object (a message or a view)."""
    value = render_json(name, **context)
    if not isinstance(value, dict):
        raise ValueError(f"template {name} rendered {type(value).__name__}, not a JSON object")
    return value


def render_mrkdwn(name: str, **context: Any) -> str:
    """Render a short mrkdwn text (`*.txt.j2`, e.g. a notification's fallback) with escaping."""
    source = _BLOCKS.get_template(name).render(**context).strip().replace("\n", "\\n")
    return str(json.loads(f'"{source}"'))


# Jinja compiles a string template anew on every from_string(); a plan listing 200 problems
# would compile 200 sentences. The sources are the catalogues' few sentences: keep them compiled.
@lru_cache(maxsize=1024)
def _block_source(source: str) -> Template:
    return _BLOCKS.from_string(source)


@lru_cache(maxsize=1024)
def _text_source(source: str) -> Template:
    return _TEXT.from_string(source)


def render_mrkdwn_source(source: str, **context: Any) -> str:
    """`render_mrkdwn` for a template held as a string (the problem catalogue's sentences)."""
    rendered = _block_source(source).render(**context).strip().replace("\n", "\\n")
    return str(json.loads(f'"{rendered}"'))


def render_text_source(source: str, **context: Any) -> str:
    """`render_text` for a template held as a string."""
    return _text_source(source).render(**context)


def render_text(name: str, **context: Any) -> str:
    """Render plain terminal text (CLI output); no Slack escaping."""
    return _TEXT.get_template(name).render(**context)
