"""`planpulse demo` end to end: the example plan, then a quarter of simulated time (shortened here)
with the scenario's people acting through signed requests; the timeline and the HTML report.

The assertions are on what the bot wrote to the database and what the stand-in saw, as shown
in the report; not on the wording of the account.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from sqlmodel import Session, select

from bot.entry.cli import main
from bot.entry.quarter.scenario import DEFAULT_SCENARIO, load_scenario
from storage.db import make_engine
from storage.models import Decision, Milestone, PulseAnswer, PulseRequest

SHORT_WEEKS = 3
REPORT_ARTIFACTS = Path(__file__).resolve().parent.parent / "demo-report"


@dataclass(frozen=True)
class DemoRun:
    code: int
    out: str
    err: str
    seconds: float
    database: str
    report: Path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> DemoRun:
    """One shortened run of the demo, shared by the tests below (it takes a few seconds)."""
    root = tmp_path_factory.mktemp("demo")
    scenario = yaml.safe_load(DEFAULT_SCENARIO.read_text(encoding="utf-8"))
    scenario["weeks"] = SHORT_WEEKS
    short = root / "short-scenario.yaml"
    short.write_text(yaml.safe_dump(scenario), encoding="utf-8")
    url = f"sqlite:///{root / 'demo.db'}"
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(
            ["demo", "--database", url, "--scenario", str(short), "--report", str(root / "report")]
        )
    return DemoRun(
        code, out.getvalue(), err.getvalue(), time.monotonic() - started, url, root / "report"
    )


def test_the_default_scenario_is_valid_and_documented() -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)
    assert scenario.weeks == 13
    text = DEFAULT_SCENARIO.read_text(encoding="utf-8")
    assert "--scenario" in text  # it says how to use a changed copy
    assert scenario.dependencies.never_acknowledged == ["support-training"]
    assert scenario.pulses.silent  # somebody goes silent: reminder, then escalation


def test_the_demo_runs_the_weeks_and_prints_a_timeline(demo_run) -> None:
    assert demo_run.code == 0, demo_run.err
    assert "Traceback" not in demo_run.out + demo_run.err
    assert demo_run.seconds < 60
    headings = re.findall(
        r"^Week (\d+) · (\w{3} \d\d \w{3}) \u2013 (\w{3} \d\d \w{3} \d{4})$", demo_run.out, re.M
    )
    assert [int(n) for n, _, _ in headings] == list(range(1, SHORT_WEEKS + 1))
    assert "{" not in demo_run.out.split("Week 1", 1)[1]  # read as text, not JSON
    assert str((demo_run.report / "index.html").resolve()) in demo_run.out


def test_what_the_people_did_reached_the_database(demo_run) -> None:
    engine = make_engine(demo_run.database)
    try:
        with Session(engine) as session:
            answers = session.exec(select(PulseAnswer)).all()
            assert answers and all(a.answered_by_id for a in answers)
            silent = [
                p for p in session.exec(select(PulseRequest)).all() if p.escalated_at is not None
            ]
            assert silent and all(p.answered_at is None for p in silent)
            [moved] = [d for d in session.exec(select(Decision)).all() if d.option == "delay"][:1]
            milestone = session.get(Milestone, moved.milestone_id)
            assert milestone is not None and milestone.due == moved.new_due
            assert milestone.due > milestone.original_due
    finally:
        engine.dispose()


def test_the_report_shows_the_whole_loop(demo_run) -> None:
    page = (demo_run.report / "index.html").read_text(encoding="utf-8")
    for week in range(1, SHORT_WEEKS + 1):
        assert f'id="week-{week}"' in page
    for seen in (
        "Friendly reminder",  # the silent owner's reminder ...
        "has gone dark",  # ... and the escalation to the team lead
        "Dependency not acknowledged",  # Marketing never answered the support-training request
        "Missed milestone",
        "Decision needed",  # the poll
        "Decided:",  # its outcome
        "Weekly plan digest",
        'class="moved"',  # the plan's moved date, in the final state
        'class="button primary"',  # buttons look like buttons
    ):
        assert seen in page, seen
    assert page.count("data:image/png;base64,") >= 6  # the KPI charts, inline
    assert "<script" not in page and "&lt;!here&gt;" not in page  # no pings, no scripts


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "Cannot read the scenario"),
        ("weeks: [", "Cannot read the scenario"),
        ("weeks: 0", "does not fit: weeks"),
        ("weeks: 3\nrainfall: heavy", "does not fit: rainfall"),
        ("votes: {leaders: {dana.whitfield@northwind.example: maybe}}", "does not fit: votes"),
        (
            "pulses: {silent: [nobody@northwind.example]}",
            "names people the example plan does not have",
        ),
        ("slips: [no-such-milestone]", "names milestones the example plan does not have"),
    ],
)
def test_a_bad_scenario_is_one_plain_sentence(tmp_path, capsys, content, expected) -> None:
    path = tmp_path / "scenario.yaml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    report = tmp_path / "report"
    code = main(
        [
            "demo",
            "--database",
            f"sqlite:///{tmp_path / 'd.db'}",
            "--scenario",
            str(path),
            "--report",
            str(report),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 2
    assert expected in err, err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1
    assert not report.exists()


def test_the_report_in_a_real_browser(demo_run) -> None:
    """Headless Chromium (Debian's package): no console errors, every image loads; a screenshot
    is kept under demo-report/ as a CI artifact."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed here (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((demo_run.report / "index.html").resolve().as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth])"
            )
            REPORT_ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(REPORT_ARTIFACTS / "screenshot.png"), full_page=False)
        finally:
            browser.close()
    assert errors == []
    assert images and all(complete and width > 0 for complete, width in images)
    assert (REPORT_ARTIFACTS / "screenshot.png").stat().st_size > 10_000
