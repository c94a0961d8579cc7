"""Plan import fuzzed in all three formats: refused with sentences and nothing written, or imported whole.

Hypothesis edits the base plan (tests/fixtures/plans/base.yaml) the way a hand, a spreadsheet
or a bad copy-paste would: any value in the YAML replaced by another or removed, text spliced
into the YAML source, any CSV cell or workbook cell set to anything a cell can hold (numbers
far out of range, NaN, dates with and without times, formulas, control characters, long
text), header cells renamed, rows duplicated. Each edited plan is imported through the CLI
(tests/planfile_support.py) into a database holding the base plan.

Properties: `planpulse import` exits 0 or 2, never 1 (an unexpected error); a refusal is
sentences on stderr, no traceback, and the database exactly as it was; `validate` and
`import` agree on what they accept.
"""

from __future__ import annotations

import copy
import csv
import io
import itertools
import math
import os
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from tests.fuzz_support import all_rows, report_cases, restore
from tests.planfile_support import BASE_PLAN, Cli, base_text

# Imports per test (spliced YAML text half as many): about 2 s per test on a 2-core machine
# with SQLite. PLANPULSE_FUZZ_EXAMPLES runs more, for a longer hunt.
EXAMPLES = int(os.environ.get("PLANPULSE_FUZZ_EXAMPLES", "30"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # the database is restored by each example itself
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

TRICKY_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\u202e",
        "line\nbreak",
        '"quoted"',
        "=1+1",
        "@SUM(A1)",
        "<!channel>",
        "x" * 5000,
        "2027-02-30",
        "2027-01-15T10:00:00",
        "99999-01-01",
        "1e400",
        "nan",
        "-inf",
        "9" * 30,
        "0x1F",
        "U",
        "#",
        "@",
        "null",
        "~",
        "yes",
        "* * * * * *",
        "61 25 * * *",
        "Mars/Olympus",
    ]
)
NUMBERS = (
    st.integers()
    | st.sampled_from([0, -1, 2**31, 2**63, 10**30, -(10**30)])
    | st.floats(allow_nan=True, allow_infinity=True)
)
DATES = st.dates() | st.datetimes() | st.sampled_from([date.min, date.max])
SCALARS = st.none() | st.booleans() | NUMBERS | DATES | TRICKY_TEXT | st.text(max_size=15)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


@pytest.fixture
def imported(cli, engine):
    """The base plan in the database: every fuzzed file is an edit of what is already there."""
    run = cli("import", str(BASE_PLAN))
    assert run.code == 0, run.err
    return all_rows(engine)


class Importer:
    """Imports one edited plan, checks the properties, puts the base plan back."""

    def __init__(self, cli: Cli, engine: Any, start: Any, folder: Path) -> None:
        self.cli, self.engine, self.start, self.folder = cli, engine, start, folder
        self.ran: Counter[str] = Counter()
        self._serial = itertools.count()

    def path(self, name: str) -> Path:
        directory = self.folder / f"case-{next(self._serial)}"
        directory.mkdir()
        return directory / name

    def __call__(self, kind: str, path: Path) -> None:
        validated = self.cli("validate", str(path))
        run = self.cli("import", str(path))
        for output in (validated, run):
            assert "Traceback" not in output.err and 'File "' not in output.err, output.err
        assert run.code in (0, 2), (kind, run.err[-3000:])
        assert validated.code in (0, 2), (kind, validated.err[-3000:])
        assert validated.code == run.code, (kind, validated.err[-2000:], run.err[-2000:])
        if run.code == 2:
            assert run.err.startswith("planpulse: "), run.err[:500]
            assert all_rows(self.engine) == self.start, (kind, "a refused import wrote rows")
        else:
            restore(self.engine, self.start)
        self.ran[f"{kind} -> {'imported' if run.code == 0 else 'refused'}"] += 1


@pytest.fixture
def importer(cli, engine, imported, tmp_path, record_property, capsys):
    checker = Importer(cli, engine, imported, tmp_path)
    yield checker
    total = report_cases(
        checker.ran, title="fuzzed plan imports", record_property=record_property, capsys=capsys
    )
    assert total >= EXAMPLES // 2  # Hypothesis ran them, not skipped them


# --- YAML ---------------------------------------------------------------------------------------


def _places(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in the parsed plan, containers included."""
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _places(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _places(value, (*path, index))
    return found


BASE_DOC = yaml.safe_load(base_text())
PLACES = _places(BASE_DOC)[1:]


def _edited(doc: Any, edits: list[tuple[tuple[Any, ...], str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for path, how, value in edits:
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            last = path[-1]
            if how == "remove":
                del parent[last]
            elif how == "twice" and isinstance(parent, list):
                parent.append(copy.deepcopy(parent[last]))
            else:
                parent[last] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced the place
    return doc


def _value_at(path: tuple[Any, ...]) -> Any:
    node = BASE_DOC
    for step in path:
        node = node[step]
    return node


# Where the plan has text (titles, names, needs, people): most imports that fail late fail on text.
TEXT_PLACES = [path for path in PLACES if isinstance(_value_at(path), str)]
YAML_EDITS = st.lists(
    st.tuples(st.sampled_from(PLACES), st.sampled_from(["set", "set", "remove", "twice"]), VALUES)
    | st.tuples(st.sampled_from(TEXT_PLACES), st.just("set"), TRICKY_TEXT | st.text(max_size=15)),
    min_size=1,
    max_size=3,
)
SPLICES = st.sampled_from(
    [
        "\t",
        ": ",
        "- ",
        "&a ",
        "*a",
        "!!python/object:os.system ",
        "!!binary ",
        "<<: *a\n",
        "{",
        "]",
        "'",
        '"\\x00"',
        "---\n",
        "...\n",
        "%YAML 1.1\n",
        "\x00",
        "\ufeff",
    ]
) | st.text(max_size=8)


def test_yaml_with_any_values(importer) -> None:
    @FUZZ
    @given(edits=YAML_EDITS)
    def run(edits: list[tuple[tuple[Any, ...], str, Any]]) -> None:
        text = yaml.safe_dump(_edited(BASE_DOC, edits), allow_unicode=True, sort_keys=False)
        path = importer.path("plan.yaml")
        path.write_text(text, encoding="utf-8")
        importer("yaml", path)

    run()


def test_yaml_text_with_anything_spliced_in(importer) -> None:
    text = base_text()

    @settings(FUZZ, max_examples=EXAMPLES // 2)
    @given(at=st.integers(0, len(text)), spliced=SPLICES)
    def run(at: int, spliced: str) -> None:
        path = importer.path("plan.yaml")
        path.write_bytes((text[:at] + spliced + text[at:]).encode("utf-8", "surrogatepass"))
        importer("yaml text", path)

    run()


# --- CSV and workbook ---------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    """A value as a person would type it into a CSV cell."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    return "" if value is None else str(value)


CELLS = SCALARS | st.times() | st.timedeltas(max_value=timedelta(days=10**5))
SHEET_EDITS = st.lists(
    st.tuples(
        st.integers(0, 50),  # which sheet (modulo how many)
        st.integers(0, 30),  # which row, header included (modulo)
        st.integers(0, 20),  # which column; past the last one adds a column
        st.sampled_from(["set", "set", "set", "twice", "remove"]),
        CELLS,
    ),
    min_size=1,
    max_size=3,
)


def _edit_rows(rows: list[list[Any]], row: int, column: int, how: str, value: Any) -> None:
    index = row % len(rows)
    if how == "twice":
        rows.append(list(rows[index]))
    elif how == "remove" and index > 0:
        del rows[index]
    else:
        width = max(len(rows[0]), 1)
        target = rows[index]
        column = column % (width + 1)
        target.extend([None] * (column + 1 - len(target)))
        target[column] = value


@pytest.fixture
def exported(cli, imported, tmp_path) -> dict[str, Path]:
    paths = {"csv": tmp_path / "exported-csv", "xlsx": tmp_path / "exported.xlsx"}
    for fmt, path in paths.items():
        assert cli("export", "--format", fmt, "--output", str(path)).code == 0
    return paths


def test_csv_cells_with_anything_typed(importer, exported) -> None:
    sheets = {
        p.name: list(csv.reader(io.StringIO(p.read_text(encoding="utf-8"))))
        for p in sorted(exported["csv"].iterdir())
    }
    names = sorted(sheets)

    @FUZZ
    @given(edits=SHEET_EDITS, raw=st.none() | st.binary(max_size=12))
    def run(edits: list[tuple[int, int, int, str, Any]], raw: bytes | None) -> None:
        folder = importer.path("plan-csv")
        folder.mkdir()
        tables = {name: [list(row) for row in rows] for name, rows in sheets.items()}
        for sheet, row, column, how, value in edits:
            _edit_rows(tables[names[sheet % len(names)]], row, column, how, _cell_text(value))
        for name, rows in tables.items():
            out = io.StringIO()
            csv.writer(out).writerows(rows)
            (folder / name).write_text(out.getvalue(), encoding="utf-8", errors="surrogatepass")
        if raw is not None:  # bytes that may not be UTF-8 at all, at the end of one file
            with (folder / names[len(raw) % len(names)]).open("ab") as handle:
                handle.write(raw)
        importer("csv", folder)

    run()


def _for_workbook(value: Any) -> Any:
    """Cells openpyxl can store: it refuses only control characters and timezone-aware times."""
    if isinstance(value, str):
        return "".join(c if c >= " " or c in "\t\n\r" else "?" for c in value)
    if isinstance(value, datetime | time) and value.tzinfo is not None:
        return value.replace(tzinfo=None)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**63:
        return str(value)
    return value


def test_workbook_cells_with_anything_stored(importer, exported) -> None:
    original = load_workbook(exported["xlsx"])
    sheets = {
        sheet.title: [list(row) for row in sheet.iter_rows(values_only=True)]
        for sheet in original.worksheets
    }
    names = list(sheets)

    @FUZZ
    @given(edits=SHEET_EDITS, rename=st.none() | st.tuples(st.integers(0, 9), TRICKY_TEXT))
    def run(edits: list[tuple[int, int, int, str, Any]], rename: tuple[int, str] | None) -> None:
        workbook = load_workbook(exported["xlsx"])
        tables = {name: [list(row) for row in rows] for name, rows in sheets.items()}
        for sheet, row, column, how, value in edits:
            _edit_rows(tables[names[sheet % len(names)]], row, column, how, _for_workbook(value))
        for name, rows in tables.items():
            worksheet = workbook[name]
            worksheet.delete_rows(1, worksheet.max_row)
            for row_values in rows:
                worksheet.append(row_values)
        if rename is not None:
            sheet, title = rename
            title = "".join(c for c in title if c not in "[]:*?/\\\x00")[:31].strip()
            if title and title not in workbook.sheetnames:
                workbook.worksheets[sheet % len(names)].title = title
        path = importer.path("plan.xlsx")
        workbook.save(path)
        importer("workbook", path)

    run()
