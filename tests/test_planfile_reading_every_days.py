"""A KPI's `reading_every_days`: default, stored, changed, exported in every format, bad values refused."""

from __future__ import annotations

import csv

import pytest
import yaml
from openpyxl import load_workbook
from sqlmodel import Session, select

from storage.models import AuditEntry, Kpi
from tests.planfile_support import BASE_PLAN, Cli, edited, snapshot

CLOSE_DAYS = "amber: 5, red: 15, reading_every_days: 40}"  # line 22 of the base plan


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


@pytest.fixture
def imported(cli, engine):
    assert cli("import", str(BASE_PLAN)).code == 0
    return snapshot(engine)


def cadences(engine) -> dict[str, int]:
    with Session(engine) as session:
        return {kpi.key: kpi.reading_every_days for kpi in session.exec(select(Kpi))}


def test_the_file_sets_it_and_a_kpi_without_it_gets_the_default(engine, imported):
    assert cadences(engine) == {"portal-adoption": 35, "close-days": 40}


def test_changing_it_is_an_audited_update_and_leaving_it_out_means_the_default(
    cli, engine, imported, tmp_path
):
    run = cli(
        "import", str(edited(tmp_path, CLOSE_DAYS, "amber: 5, red: 15, reading_every_days: 7}"))
    )
    assert run.code == 0, run.err
    assert "close-days" in run.out and "reading_every_days" in run.out, run.out
    assert cadences(engine)["close-days"] == 7
    with Session(engine) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.entity == "kpi", AuditEntry.action == "update")
        ).one()
    assert (entry.entity_key, entry.before, entry.after) == (
        "close-days",
        {"reading_every_days": 40},
        {"reading_every_days": 7},
    )
    # The file is the whole plan: a field it leaves out takes its default (only the fields
    # Slack moves along are kept when absent).
    assert cli("import", str(edited(tmp_path, CLOSE_DAYS, "amber: 5, red: 15}"))).code == 0
    assert cadences(engine)["close-days"] == 35


def test_yaml_export_writes_it_on_every_kpi_like_the_other_tolerances(cli, imported):
    run = cli("export")
    assert run.code == 0, run.err
    kpis = {k["key"]: k for k in yaml.safe_load(run.out)["objectives"][0]["kpis"]}
    assert kpis["close-days"]["reading_every_days"] == 40
    # Written at the default too, as amber and red are: the export says how each KPI is judged.
    assert kpis["portal-adoption"]["reading_every_days"] == 35
    assert list(kpis["close-days"])[-1] == "reading_every_days"  # after red, as documented


def test_spreadsheet_exports_carry_it_and_import_unchanged(cli, engine, imported, tmp_path):
    workbook = tmp_path / "plan.xlsx"
    folder = tmp_path / "plan-csv"
    assert cli("export", "--format", "xlsx", "--output", str(workbook)).code == 0
    assert cli("export", "--format", "csv", "--output", str(folder)).code == 0
    rows = list(load_workbook(workbook)["kpis"].values)
    column = rows[0].index("reading_every_days")
    assert {row[0]: row[column] for row in rows[1:]} == {"portal-adoption": 35, "close-days": 40}
    with (folder / "kpis.csv").open(encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    assert {r["key"]: r["reading_every_days"] for r in records} == {
        "portal-adoption": "35",
        "close-days": "40",
    }
    for path in (workbook, folder):
        run = cli("import", str(path))
        assert run.code == 0, run.err
        assert "nothing changed" in run.out, run.out
    assert snapshot(engine) == imported


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        ("0", "0 is too small (at least 1)"),
        ("-3", "-3 is too small (at least 1)"),
        ("10000", "10000 is too large (at most 366)"),
        ("weekly", "'weekly' is not a whole number"),
        ("2.5", "2.5 is not a whole number"),
        ("yes", "True is not a whole number"),
        ('""', "'' is not a whole number"),
    ],
)
def test_a_bad_value_is_listed_with_its_place_and_nothing_is_written(
    cli, engine, imported, tmp_path, value, sentence
):
    path = edited(tmp_path, CLOSE_DAYS, f"amber: 5, red: 15, reading_every_days: {value}}}")
    for command in ("validate", "import"):
        run = cli(command, str(path))
        assert run.code == 2, run
        assert "Traceback" not in run.err
        assert (
            "plan.yaml, line 22: objective digital-portal, KPI close-days, reading_every_days: "
            f"{sentence}." in run.err
        ), run.err
    assert snapshot(engine) == imported


def test_a_bad_value_in_a_workbook_names_its_sheet_row_and_column(cli, engine, imported, tmp_path):
    path = tmp_path / "plan.xlsx"
    assert cli("export", "--format", "xlsx", "--output", str(path)).code == 0
    book = load_workbook(path)
    sheet = book["kpis"]
    header = [cell.value for cell in sheet[1]]
    sheet.cell(row=3, column=header.index("reading_every_days") + 1, value=0)
    book.save(path)
    run = cli("import", str(path))
    assert run.code == 2, run
    assert (
        "plan.xlsx, sheet kpis, row 3, column reading_every_days: objective digital-portal, "
        "KPI close-days, reading_every_days: 0 is too small (at least 1)." in run.err
    ), run.err
    assert snapshot(engine) == imported
