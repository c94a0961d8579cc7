"""The layers keep their shape: drivers call the core, the core never calls them back (docs/ARCHITECTURE.md).

An AST read of every module's imports and calls, so a new file cannot quietly cross a layer:
- the core (bot/, except its entry layer bot/entry/) imports neither handlers/, scheduler/ nor
  standin/; handlers/ and scheduler/ never import each other;
- only storage/ builds queries (select, insert, update, delete, func… from SQLAlchemy/SQLModel);
  the others may name an `Engine` or a `Session`, nothing more;
- only the gateway (bot/slack/gateway.py) talks to the Web API: no other module imports
  slack_sdk's WebClient or calls a method on a `client`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "handlers", "scheduler", "storage", "templates", "standin")
QUERY_CONSTRUCTS = {
    "select",
    "insert",
    "update",
    "delete",
    "func",
    "col",
    "text",
    "and_",
    "or_",
    "exists",
    "case",
    "literal",
    "tuple_",
}
DATABASE_MODULES = ("sqlalchemy", "sqlmodel")
GATEWAY = "bot/slack/gateway.py"


@dataclass(frozen=True)
class Import:
    path: str  # the importing file, relative to the root
    module: str  # the imported module, absolute
    names: tuple[str, ...]  # the names taken from it (`from m import a, b`), empty for `import m`
    line: int


def sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def imports_of(path: Path) -> list[Import]:
    found = []
    relative = str(path.relative_to(ROOT))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend(Import(relative, alias.name, (), node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = tuple(alias.name for alias in node.names)
            found.append(Import(relative, node.module, names, node.lineno))
    return found


def top(module: str) -> str:
    return module.split(".")[0]


def is_entry(path: str) -> bool:
    return path.startswith("bot/entry/")


def in_migrations(path: str) -> bool:
    return path.startswith("storage/migrations/")


def test_the_core_never_imports_its_drivers_or_the_stand_in():
    crossings = [
        f"{i.path}:{i.line} imports {i.module}"
        for path in sources("bot")
        for i in imports_of(path)
        if not is_entry(i.path) and top(i.module) in {"handlers", "scheduler", "standin"}
    ]
    assert crossings == []


@pytest.mark.parametrize(
    ("driver", "other"), [("handlers", "scheduler"), ("scheduler", "handlers")]
)
def test_the_drivers_never_import_each_other(driver, other):
    crossings = [
        f"{i.path}:{i.line} imports {i.module}"
        for path in sources(driver)
        for i in imports_of(path)
        if top(i.module) == other
    ]
    assert crossings == []


def test_the_core_templates_and_storage_never_import_the_entry_layer():
    crossings = [
        f"{i.path}:{i.line} imports {i.module}"
        for path in sources(*PACKAGES)
        for i in imports_of(path)
        if not is_entry(i.path) and i.module.startswith("bot.entry")
    ]
    assert crossings == []


def test_only_storage_builds_queries():
    builders = [
        f"{i.path}:{i.line} takes {', '.join(sorted(set(i.names) & QUERY_CONSTRUCTS))} from {i.module}"
        for path in sources(*(p for p in PACKAGES if p != "storage"))
        for i in imports_of(path)
        if top(i.module) in DATABASE_MODULES and set(i.names) & QUERY_CONSTRUCTS
    ]
    whole_modules = [
        f"{i.path}:{i.line} imports {i.module} whole"
        for path in sources(*(p for p in PACKAGES if p != "storage"))
        for i in imports_of(path)
        if top(i.module) in DATABASE_MODULES and not i.names
    ]
    assert builders == [] and whole_modules == []


def _client_calls(path: Path) -> list[str]:
    """`client.x(...)` or `self.client.x(...)`: a Web API call made directly."""
    calls = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if name == "client":
                calls.append(
                    f"{path.relative_to(ROOT)}:{node.lineno} calls client.{node.func.attr}"
                )
    return calls


def test_only_the_gateway_calls_the_web_api():
    checked = [p for p in sources("bot", "handlers", "scheduler", "storage", "templates")]
    web_clients = [
        f"{i.path}:{i.line} imports {i.module}"
        for path in checked
        for i in imports_of(path)
        if i.path != GATEWAY
        and top(i.module) == "slack_sdk"
        and ("WebClient" in i.names or i.module.startswith("slack_sdk.web"))
    ]
    direct_calls = [
        c for p in checked if str(p.relative_to(ROOT)) != GATEWAY for c in _client_calls(p)
    ]
    assert web_clients == [] and direct_calls == []


def test_the_checks_see_the_code():
    # A guard against a check that passes because it reads nothing.
    assert len(sources("bot")) > 20 and any(
        i.module == "storage.db" for p in sources("bot") for i in imports_of(p)
    )
    assert _client_calls(ROOT / GATEWAY)
