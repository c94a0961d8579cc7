"""The spreadsheet formats: an .xlsx workbook and a folder of .csv files, with sheet/file and row."""

from __future__ import annotations

import csv
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook
from sqlmodel import Session, select

from storage.models import Milestone
from tests.planfile_support import BASE_PLAN, Cli, snapshot


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


@pytest.fixture
def workbook_path(cli, engine, tmp_path):
    """The base plan imported, then exported as a workbook to edit."""
    assert cli("import", str(BASE_PLAN)).code == 0
    path = tmp_path / "plan.xlsx"
    assert cli("export", "--format", "xlsx", "--output", str(path)).code == 0
    return path


@pytest.fixture
def csv_folder(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    path = tmp_path / "plan-csv"
    assert cli("export", "--format", "csv", "--output", str(path)).code == 0
    return path


def edit_cell(path, sheet, key, column, value):
    """Set one cell of the row whose first cell is `key`; returns that row's number."""
    workbook = load_workbook(path)
    worksheet = workbook[sheet]
    header = [cell.value for cell in worksheet[1]]
    for row in worksheet.iter_rows(min_row=2):
        if row[0].value == key:
            row[header.index(column)].value = value
            workbook.save(path)
            return row[0].row
    raise AssertionError(f"{key} not in {sheet}")


def refused(cli, engine, path, *expected):
    before = snapshot(engine)
    run = cli("import", str(path))
    assert run.code == 2, run
    for text in expected:
        assert text in run.err, f"{text!r} not in:\n{run.err}"
    assert snapshot(engine) == before
    return run.err


def test_extra_empty_rows_are_ignored(cli, engine, workbook_path):
    workbook = load_workbook(workbook_path)
    milestones = workbook["milestones"]
    milestones.insert_rows(3, amount=2)  # blank rows in the middle
    for row in range(milestones.max_row + 1, milestones.max_row + 6):
        milestones.cell(row=row, column=1, value="   ")  # rows that only look empty
    workbook.save(workbook_path)
    run = cli("import", str(workbook_path))
    assert run.code == 0, run.err
    assert "nothing changed" in run.out


def test_a_formula_cell_is_an_error_naming_the_cell(cli, engine, workbook_path):
    row = edit_cell(
        workbook_path, "milestones", "beta-launch", "title", '=CONCAT("Beta", " launch")'
    )
    refused(cli, engine, workbook_path, f"plan.xlsx, sheet milestones, cell C{row}", "formula")


def test_a_date_typed_as_iso_text_is_accepted(cli, engine, workbook_path):
    edit_cell(workbook_path, "milestones", "beta-ready", "due", "2027-01-20")
    run = cli("import", str(workbook_path))
    assert run.code == 0, run.err
    assert "updated: beta-ready (Beta feature-complete): due" in run.out
    with Session(engine) as session:
        assert session.exec(
            select(Milestone).where(Milestone.key == "beta-ready")
        ).one().due == date(2027, 1, 20)


def test_a_date_typed_as_other_text_is_an_error(cli, engine, workbook_path):
    row = edit_cell(workbook_path, "milestones", "beta-ready", "due", "20/01/2027")
    refused(
        cli,
        engine,
        workbook_path,
        f"plan.xlsx, sheet milestones, row {row}, column due",
        "'20/01/2027' is not a date; write it as YYYY-MM-DD",
    )


def test_a_date_with_a_time_of_day_is_an_error(cli, engine, workbook_path):
    row = edit_cell(workbook_path, "milestones", "beta-ready", "due", datetime(2027, 1, 20, 15, 30))
    refused(cli, engine, workbook_path, f"row {row}, column due", "has a time of day")


def test_a_missing_sheet_is_named(cli, engine, workbook_path):
    workbook = load_workbook(workbook_path)
    del workbook["dependencies"]
    workbook.save(workbook_path)
    refused(cli, engine, workbook_path, "plan.xlsx: the sheet 'dependencies' is missing")


def test_unknown_sheets_and_columns_are_errors(cli, engine, workbook_path):
    workbook = load_workbook(workbook_path)
    workbook["teams"].cell(row=1, column=6, value="budget")
    workbook.create_sheet("milestone")  # a typo'd sheet must not be silently skipped
    workbook.save(workbook_path)
    refused(
        cli,
        engine,
        workbook_path,
        "plan.xlsx, sheet teams, row 1: unknown column 'budget'",
        "plan.xlsx, sheet milestone: unknown sheet 'milestone'",
    )


def test_row_problems_name_sheet_row_and_column(cli, engine, workbook_path):
    row = edit_cell(workbook_path, "dependencies", "support-training", "provider", "legal")
    bad_parent = edit_cell(workbook_path, "milestones", "beta-launch", "initiative", "portal-gamma")
    err = refused(
        cli,
        engine,
        workbook_path,
        f"plan.xlsx, sheet dependencies, row {row}, column provider: initiative portal-beta, dependency support-training: provider 'legal' is not a team",
        f"plan.xlsx, sheet milestones, row {bad_parent}, column initiative: initiative 'portal-gamma' is not in the sheet initiatives",
    )
    assert "milestone 'beta-launch' is not a milestone of initiative 'portal-beta'" in err


def test_not_a_workbook(cli, engine, tmp_path):
    path = tmp_path / "plan.xlsx"
    path.write_text("organization,Northwind\n")
    refused(cli, engine, path, "not an .xlsx workbook")


def test_a_handmade_workbook_with_settings_in_rows(cli, engine, tmp_path):
    """What a team leaving its spreadsheet would write: one sheet per list, nothing else."""
    workbook = Workbook()
    workbook.remove(workbook.active)
    sheets = {
        "settings": [
            ["field", "value"],
            ["organization", "Contoso"],
            ["timezone", "Europe/London"],
        ],
        "leaders": [["person"], ["ceo@contoso.example"]],
        "teams": [
            ["key", "name", "members"],
            ["ops", "Operations", "a@contoso.example; b@contoso.example"],
        ],
        "objectives": [["key", "title"], ["grow", "Grow"]],
        "kpis": [
            ["key", "objective", "name", "baseline", "target", "start", "due"],
            ["nps", "grow", "NPS", 20, 40, date(2027, 1, 1), date(2027, 12, 31)],
        ],
        "initiatives": [
            ["Key", "Title", "Objective", "Owner", "Team", "KPIs"],
            ["crm", "New CRM", "grow", "a@contoso.example", "ops", "nps"],
        ],
        "milestones": [
            ["key", "initiative", "title", "due"],
            ["crm-live", "crm", "CRM live", "2027-03-01"],
        ],
        "dependencies": [["key", "initiative", "provider", "need", "needed by"]],
    }
    for name, rows in sheets.items():
        worksheet = workbook.create_sheet(name)
        for row in rows:
            worksheet.append(row)
    path = tmp_path / "contoso.xlsx"
    workbook.save(path)
    run = cli("import", str(path))
    assert run.code == 0, run.err
    assert "created: crm (New CRM)" in run.out
    assert "People: 3 created" in run.out


def test_csv_folder_round_trip_and_utf8_bom(cli, engine, csv_folder):
    teams = csv_folder / "teams.csv"
    teams.write_bytes(b"\xef\xbb\xbf" + teams.read_bytes())  # what Excel's "CSV UTF-8" writes
    run = cli("import", str(csv_folder))
    assert run.code == 0, run.err
    assert "nothing changed" in run.out


def test_csv_problems_name_file_and_row(cli, engine, csv_folder):
    path = csv_folder / "milestones.csv"
    rows = list(csv.reader(path.open(encoding="utf-8")))
    rows[2][rows[0].index("due")] = "2027-02-30"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    refused(
        cli,
        engine,
        csv_folder,
        "plan-csv/milestones.csv, row 3, column due",
        "2027-02-30 is not a real date",
    )


def test_csv_that_is_not_utf8(cli, engine, csv_folder):
    path = csv_folder / "teams.csv"
    path.write_bytes(
        path.read_text(encoding="utf-8").replace("Marketing", "Mark\u00e9ting").encode("cp1252")
    )
    refused(cli, engine, csv_folder, "plan-csv/teams.csv, line 3", "not UTF-8")


def test_a_missing_csv_file_is_named_and_an_empty_one_is_an_empty_list(cli, engine, csv_folder):
    (csv_folder / "dependencies.csv").write_text("")
    (csv_folder / "readings.csv").unlink()  # optional
    run = cli("import", "--dry-run", str(csv_folder))
    assert run.code == 0, run.err
    assert "Dependencies: 2 archived" in run.out
    (csv_folder / "leaders.csv").unlink()
    refused(cli, engine, csv_folder, "the sheet 'leaders' is missing")
