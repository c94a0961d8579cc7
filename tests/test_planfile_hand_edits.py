"""Plan files as people edit them by hand: an emptied list is an empty list, a wrong shape is not."""

from __future__ import annotations

import copy
import csv
from collections.abc import Iterator
from typing import Any, get_args, get_origin

import pytest
from openpyxl import load_workbook
from pydantic import BaseModel
from sqlmodel import Session, col, select

from bot.planfile.schema import PlanFile
from bot.planfile.yaml_reader import read_yaml
from storage.models import (
    Dependency,
    Holiday,
    Initiative,
    InitiativeKpi,
    Milestone,
    Person,
    TeamMember,
)
from tests.planfile_support import BASE_PLAN, Cli, base_text, snapshot, write


@pytest.fixture
def cli(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    return Cli(capsys)


def emptied(text: str, *cuts: tuple[str, str]) -> str:
    """The plan text with each `old` replaced by `new`, asserting every edit applies."""
    for old, new in cuts:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


ERP_MILESTONES_AND_DEPENDENCIES = (
    "    milestones:\n"
    "      - {key: erp-sandbox, title: Sandbox connected, due: 2026-11-01, status: done}\n"
    "      - {key: data-migration, title: Data migration, due: 2027-03-01}\n"
    "    dependencies:\n"
    "      - {key: data-cleansing, provider: finance, need: Master data cleansed, "
    "needed_by: 2027-02-01, milestone: data-migration, state: acknowledged, ack_within_days: 5}\n"
)


def test_deleting_the_last_items_of_lists_leaves_empty_values_that_import(cli, engine, tmp_path):
    """What a person leaves after deleting every milestone of an initiative in an editor."""
    assert cli("import", str(BASE_PLAN)).code == 0
    text = emptied(
        base_text(),
        (ERP_MILESTONES_AND_DEPENDENCIES, "    milestones:\n    dependencies:\n"),
        ("admins: [U0ADMIN01]", "admins:"),
        (
            "holidays:\n  - {start: 2026-12-24, end: 2026-12-26, name: Winter break}\n"
            "  - {start: 2027-01-01}\n",
            "holidays:\n",
        ),
        ("members: [alice@northwind.example]}", "members: }"),
        ("    kpis: [close-days]\n", "    kpis:\n"),
    )
    path = write(tmp_path / "plan.yaml", text)
    assert cli("validate", str(path)).code == 0
    run = cli("import", str(path))
    assert run.code == 0, run.err
    assert "Milestones: 2 archived, 2 unchanged" in run.out
    assert "Dependencies: 1 archived, 1 unchanged" in run.out
    with Session(engine) as session:
        erp = session.exec(select(Initiative).where(Initiative.key == "erp")).one()
        milestones = session.exec(select(Milestone).where(Milestone.initiative_id == erp.id)).all()
        assert [m.archived for m in milestones] == [True, True]
        cleansing = session.exec(select(Dependency).where(Dependency.key == "data-cleansing")).one()
        assert cleansing.archived
        assert (
            session.exec(select(InitiativeKpi).where(InitiativeKpi.initiative_id == erp.id)).all()
            == []
        )
        assert session.exec(select(Holiday)).all() == []
        assert session.exec(select(TeamMember)).all() == []
        assert session.exec(select(Person).where(col(Person.is_admin))).all() == []


def _items(model: type[BaseModel], data: Any) -> Iterator[tuple[type[BaseModel], dict[str, Any]]]:
    """Every item of the document with the schema model that reads it, found through the schema."""
    if not isinstance(data, dict):
        return
    yield model, data
    for name, field in model.model_fields.items():
        inner = get_args(field.annotation)
        if get_origin(field.annotation) is list and inner and _is_model(inner[0]):
            for child in data.get(name) or []:
                yield from _items(inner[0], child)
        elif _is_model(field.annotation):
            yield from _items(field.annotation, data.get(name))


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _list_fields_of_the_schema() -> list[tuple[type[BaseModel], str]]:
    """(model, field) for every list-valued field of every kind of item the base plan holds."""
    doc, _locator, _problems = read_yaml("plan.yaml", base_text())
    seen: dict[tuple[type[BaseModel], str], None] = {}
    for model, _item in _items(PlanFile, doc):
        for name, field in model.model_fields.items():
            if get_origin(field.annotation) is list:
                seen.setdefault((model, name), None)
    return list(seen)


LIST_FIELDS = _list_fields_of_the_schema()


def test_the_schema_walk_finds_the_list_fields_people_edit():
    names = {(model.__name__, name) for model, name in LIST_FIELDS}
    assert {
        ("PlanFile", "leaders"),
        ("PlanFile", "holidays"),
        ("TeamSpec", "members"),
        ("ObjectiveSpec", "kpis"),
        ("KpiSpec", "readings"),
        ("InitiativeSpec", "kpis"),
        ("InitiativeSpec", "milestones"),
        ("InitiativeSpec", "dependencies"),
    } <= names


@pytest.mark.parametrize(
    ("model", "field"), LIST_FIELDS, ids=[f"{m.__name__}.{f}" for m, f in LIST_FIELDS]
)
def test_every_list_field_written_empty_is_an_empty_list(model, field):
    """`field:` with no value, in any item that has the field: new list fields are covered too."""
    doc, _locator, _problems = read_yaml("plan.yaml", base_text())
    doc = copy.deepcopy(doc)
    item = next(data for kind, data in _items(PlanFile, doc) if kind is model)
    item[field] = None
    assert getattr(model.model_validate(item), field) == []
    PlanFile.model_validate(doc)


def refused(cli, engine, path, *expected: str) -> None:
    """Exactly the expected problems: the emptied `dependencies:` beside them is not one."""
    before = snapshot(engine)
    for command in ("validate", "import"):
        run = cli(command, str(path))
        assert run.code == 2, run
        for text in expected:
            assert text in run.err, f"{text!r} not in:\n{run.err}"
        assert f"The plan has {len(expected)} problems" in run.err, run.err
    assert snapshot(engine) == before


def test_a_single_value_where_a_list_belongs_is_still_refused_with_its_line(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    text = emptied(
        base_text(),
        (ERP_MILESTONES_AND_DEPENDENCIES, "    milestones: next spring\n    dependencies:\n"),
        (
            "leaders: [cfo@northwind.example, cio@northwind.example, coo@northwind.example]",
            "leaders: cfo@northwind.example",
        ),
    )
    refused(
        cli,
        engine,
        write(tmp_path / "plan.yaml", text),
        "plan.yaml, line 5: leaders: expected a list, not 'cfo@northwind.example'.",
        "plan.yaml, line 42: initiative erp, milestones: expected a list, not 'next spring'.",
    )


def test_a_mapping_where_a_list_belongs_is_still_refused_with_its_line(cli, engine, tmp_path):
    assert cli("import", str(BASE_PLAN)).code == 0
    text = emptied(
        base_text(),
        (
            ERP_MILESTONES_AND_DEPENDENCIES,
            "    milestones:\n"
            "      key: erp-sandbox\n"
            "      title: Sandbox connected\n"
            "    dependencies:\n",
        ),
        ("members: [alice@northwind.example]}", "members: {alice: alice@northwind.example}}"),
    )
    refused(
        cli,
        engine,
        write(tmp_path / "plan.yaml", text),
        "plan.yaml, line 12: team it, members: expected a list, not a mapping.",
        "plan.yaml, line 43: initiative erp, milestones: expected a list, not a mapping.",
    )


# --- spreadsheets: an empty cell of a list column ---------------------------------------------


@pytest.fixture
def exported(cli, engine, tmp_path):
    """The base plan imported, then exported as a workbook and as a CSV folder to edit."""
    assert cli("import", str(BASE_PLAN)).code == 0
    workbook = tmp_path / "plan.xlsx"
    folder = tmp_path / "plan-csv"
    assert cli("export", "--format", "xlsx", "--output", str(workbook)).code == 0
    assert cli("export", "--format", "csv", "--output", str(folder)).code == 0
    return {"xlsx": workbook, "csv": folder}


def _clear_xlsx(path, sheet: str, key: str, column: str, value: Any) -> None:
    workbook = load_workbook(path)
    rows = list(workbook[sheet].iter_rows())
    header = [cell.value for cell in rows[0]]
    [row] = [row for row in rows[1:] if row[0].value == key]
    row[header.index(column)].value = value
    workbook.save(path)


def _clear_csv(folder, sheet: str, key: str, column: str, value: Any) -> None:
    path = folder / f"{sheet}.csv"
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    [row] = [row for row in rows[1:] if row[0] == key]
    row[rows[0].index(column)] = value
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)


BLANK_CELLS = [
    ("xlsx", None),
    *((kind, text) for kind in ("xlsx", "csv") for text in ("", "   ", " , ; ")),
]


@pytest.mark.parametrize(("kind", "blank"), BLANK_CELLS, ids=[f"{k}-{b!r}" for k, b in BLANK_CELLS])
def test_an_empty_cell_of_a_list_column_is_an_empty_list(cli, engine, exported, kind, blank):
    """A cleared cell (no value, empty text, spaces, only separators) in a workbook or CSV."""
    clear = _clear_xlsx if kind == "xlsx" else _clear_csv
    clear(exported[kind], "teams", "it", "members", blank)
    clear(exported[kind], "initiatives", "erp", "kpis", blank)
    run = cli("import", str(exported[kind]))
    assert run.code == 0, run.err
    with Session(engine) as session:
        assert session.exec(select(TeamMember)).all() == []
        erp = session.exec(select(Initiative).where(Initiative.key == "erp")).one()
        assert (
            session.exec(select(InitiativeKpi).where(InitiativeKpi.initiative_id == erp.id)).all()
            == []
        )
