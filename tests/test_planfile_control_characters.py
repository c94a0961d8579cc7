"""Control characters in a plan's text are refused with their place, before anything is written.

Found by tests/test_fuzz_planfile.py on PostgreSQL: an organization (or a title, a name, an
e-mail address) with a NUL in it passed validation, then PostgreSQL refused the row half-way
through the import: exit status 1 and a traceback instead of a listed problem.
"""

from __future__ import annotations

import csv

import pytest

from tests.planfile_support import BASE_PLAN, Cli, edited, snapshot


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


@pytest.mark.parametrize(
    ("old", "new", "said"),
    [
        ("organization: Northwind Financial", 'organization: "North\\0wind"', "line 2"),
        ("title: Customer portal beta", 'title: "Customer\\x07 portal"', "U+0007"),
        ("owner: alice@northwind.example", 'owner: "ali\\0ce@northwind.example"', "U+0000"),
        ("need: Support staff trained", 'need: "Support\\x1b staff trained', "U+001B"),
    ],
)
def test_a_control_character_in_yaml_text_is_a_listed_problem(
    cli, engine, tmp_path, old, new, said
):
    assert cli("import", str(BASE_PLAN)).code == 0
    before = snapshot(engine)
    path = edited(tmp_path, old, new)
    if "need:" in new:  # the flow mapping's value is plain text; quote it to the comma
        path.write_text(
            path.read_text(encoding="utf-8").replace("for the beta,", 'for the beta",'),
            encoding="utf-8",
        )
    run = cli("import", str(path))
    assert run.code == 2, run.err
    assert "contains a control character" in run.err and said in run.err, run.err
    assert "Traceback" not in run.err
    assert snapshot(engine) == before


def test_a_control_character_in_a_csv_cell_names_its_row(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    folder = tmp_path / "plan-csv"
    assert cli("export", "--format", "csv", "--output", str(folder)).code == 0
    before = snapshot(engine)
    teams = folder / "teams.csv"
    rows = list(csv.reader(teams.open(encoding="utf-8")))
    rows[1][rows[0].index("name")] = "IT\x7fDelivery"
    with teams.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    run = cli("import", str(folder))
    assert run.code == 2, run.err
    assert "teams.csv, row 2, column name" in run.err and "U+007F" in run.err, run.err
    assert snapshot(engine) == before


def test_tabs_and_line_breaks_stay_allowed(cli, engine, tmp_path):
    path = edited(tmp_path, "title: Customer portal beta", 'title: "Customer\\tportal beta"')
    assert cli("import", str(path)).code == 0
