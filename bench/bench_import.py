"""Plan import benchmark: 10,000 initiatives (4 milestones, 2 dependencies, 2 KPIs each).

Measures, in one run, against the time PyYAML's C loader takes just to parse the same file:
the first import into an empty SQLite database, an unchanged re-import, and an export.
Run: .venv/bin/python -m bench.bench_import [--initiatives N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.figures import Figure
from bot.planfile.export import exported_document, write_yaml
from bot.planfile.importer import import_plan
from bot.planfile.validate import load_plan
from bot.planfile.yaml_reader import read_yaml
from storage.db import make_engine, upgrade

GOALS = {"first import": 5.0, "unchanged re-import": 3.0}
PEAK_GOAL_MB = 500


def generate_plan(initiatives: int) -> dict[str, Any]:
    start = date(2027, 1, 4)
    teams = max(initiatives // 200, 2)
    objectives = max(initiatives // 100, 1)
    people = max(initiatives // 10, 2)
    person = [f"person{n}@bench.example" for n in range(people)]
    doc: dict[str, Any] = {
        "organization": "Benchmark Bank",
        "timezone": "America/New_York",
        "channels": {"decisions": "#decisions", "alerts": "#alerts"},
        "leaders": person[:5],
        "defaults": {"pulse": "0 9 * * mon", "ack_within_days": 2, "poll_hours": 48},
        "teams": [
            {
                "key": f"team-{t}",
                "name": f"Team {t}",
                "channel": f"#team-{t}",
                "lead": person[t % people],
            }
            for t in range(teams)
        ],
        "objectives": [],
        "initiatives": [],
    }
    kpis: list[list[dict[str, Any]]] = [[] for _ in range(objectives)]
    for n in range(initiatives):
        objective = n % objectives
        kpi_keys = [f"kpi-{n}-{k}" for k in range(2)]
        for k, key in enumerate(kpi_keys):
            kpis[objective].append(
                {
                    "key": key,
                    "name": f"Measure {k} of initiative {n}",
                    "unit": "%",
                    "baseline": 10 + k,
                    "target": 40 + k,
                    "direction": "up",
                    "start": start,
                    "due": start + timedelta(days=365),
                }
            )
        milestones = [
            {
                "key": f"ms-{n}-{m}",
                "title": f"Milestone {m} of initiative {n}",
                "due": start + timedelta(days=30 * (m + 1) + n % 20),
            }
            for m in range(4)
        ]
        doc["initiatives"].append(
            {
                "key": f"init-{n}",
                "title": f"Initiative number {n}",
                "objective": f"obj-{objective}",
                "owner": person[n % people],
                "team": f"team-{n % teams}",
                "kpis": kpi_keys,
                "milestones": milestones,
                "dependencies": [
                    {
                        "key": f"dep-{n}-{d}",
                        "provider": f"team-{(n + d + 1) % teams}",
                        "need": f"Need {d} of initiative {n} from another team",
                        "needed_by": milestones[d + 1]["due"] - timedelta(days=7),
                        "milestone": milestones[d + 1]["key"],
                    }
                    for d in range(2)
                ],
            }
        )
    doc["objectives"] = [
        {"key": f"obj-{o}", "title": f"Objective {o}", "owner": person[o % people], "kpis": kpis[o]}
        for o in range(objectives)
    ]
    return doc


def peak_mb() -> float:
    """This process's peak resident memory. VmHWM starts afresh at exec; ru_maxrss does not on
    Linux (a child would inherit the peak of the parent that generated the plan)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def run_phase(phase: str, plan_path: Path, database_url: str) -> dict[str, Any]:
    """One measurement, in this (fresh) process: its time and the process's peak memory."""
    now = datetime(2027, 1, 4, 14, tzinfo=UTC)
    engine = make_engine(database_url)
    began = time.perf_counter()
    changed = None
    if phase == "parse":
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        yaml.load(plan_path.read_text("utf-8"), Loader=loader)
    elif phase == "read":
        read_yaml(str(plan_path), plan_path.read_text("utf-8"))
    elif phase in ("import", "reimport"):
        changed = import_plan(engine, load_plan(str(plan_path)), actor="bench", now=now).changed
    elif phase == "export":
        with (plan_path.parent / "export.yaml").open("w", encoding="utf-8") as handle:
            write_yaml(exported_document(engine), handle)
    seconds = time.perf_counter() - began
    engine.dispose()
    return {"seconds": seconds, "peak_mb": peak_mb(), "changed": changed}


PHASES = (
    ("parse", "YAML C-loader parse"),
    ("read", "our YAML read"),
    ("import", "first import"),
    ("reimport", "unchanged re-import"),
    ("export", "export"),
)


def main(argv: list[str] | None = None, report: list[Figure] | None = None) -> int:
    """Run the benchmark and print it; `report` (bench/run_all.py) also receives its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--initiatives", type=int, default=10_000)
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # internal: one measurement per process
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.phase:
        print(json.dumps(run_phase(args.phase, Path(args.plan), args.database)))
        return 0
    with tempfile.TemporaryDirectory() as folder:
        plan_path = Path(folder) / "plan.yaml"
        with plan_path.open("w", encoding="utf-8") as handle:
            write_yaml(generate_plan(args.initiatives), handle)
        database_url = f"sqlite:///{folder}/bench.db"
        engine = make_engine(database_url)
        upgrade(engine)
        engine.dispose()
        size_mb = plan_path.stat().st_size / 1024 / 1024
        print(f"Plan: {args.initiatives} initiatives, {size_mb:.1f} MB of YAML")
        print(
            f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print("Each phase runs in its own process; peak = that process's maximum RSS.\n")
        results: dict[str, dict[str, Any]] = {}
        for phase, label in PHASES:
            # Separate processes: PyYAML's full load would otherwise set everyone's peak.
            child = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bench.bench_import",
                    "--phase",
                    phase,
                    "--plan",
                    str(plan_path),
                    "--database",
                    database_url,
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            results[label] = json.loads(child.stdout.strip().splitlines()[-1])
            print(
                f"{label:>22}: {results[label]['seconds']:7.2f} s   peak {results[label]['peak_mb']:6.0f} MB",
                flush=True,
            )
    assert results["first import"]["changed"] and not results["unchanged re-import"]["changed"]
    parse = results["YAML C-loader parse"]["seconds"]
    print("\nRatios against the parse time:")
    for label in ("our YAML read", "first import", "unchanged re-import", "export"):
        ratio = results[label]["seconds"] / parse
        goal = GOALS.get(label)
        verdict = (
            "" if goal is None else f"  goal <= {goal:g}x: {'met' if ratio <= goal else 'NOT met'}"
        )
        print(f"{label:>22}: {ratio:5.2f}x{verdict}")
    # The import reads YAML from the C parser's events, not with yaml.load: also show the part of
    # each import that is not reading, against our own read time, so nothing hides in the baseline.
    read = results["our YAML read"]["seconds"]
    for label in ("first import", "unchanged re-import"):
        rest = results[label]["seconds"] - read
        print(f"{label + ' w/o read':>22}: {rest:6.2f} s = {rest / read:4.2f}x our read time")
    worst = max(
        results[label]["peak_mb"] for label in ("first import", "unchanged re-import", "export")
    )
    print(
        f"{'peak memory':>22}: {worst:5.0f} MB (import/re-import/export)  goal < {PEAK_GOAL_MB} MB: "
        f"{'met' if worst < PEAK_GOAL_MB else 'NOT met'}"
    )
    if report is not None:
        floor = f"`yaml.load` (C loader) {parse:.1f} s"
        for label in ("first import", "unchanged re-import"):
            seconds = results[label]["seconds"]
            report.append(
                Figure(
                    "import",
                    f"{label} of {args.initiatives:,} initiatives ({size_mb:.0f} MB of YAML)",
                    f"{seconds:.1f} s ({seconds / parse:.2f}x)",
                    f"≤ {GOALS[label]:g}x parse",
                    floor,
                    seconds / parse <= GOALS[label],
                )
            )
        export = results["export"]["seconds"]
        report += [
            Figure(
                "import", "export to YAML", f"{export:.1f} s ({export / parse:.2f}x)", "", floor
            ),
            Figure(
                "import",
                "peak memory of import, re-import, export",
                f"{worst:.0f} MB",
                f"< {PEAK_GOAL_MB} MB",
                "",
                worst < PEAK_GOAL_MB,
            ),
        ]
    return 0


if __name__ == "__main__":
    sys.exit(main())
