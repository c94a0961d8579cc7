"""What a benchmark measured, as rows of the one table `make bench` prints (bench/run_all.py)."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """One measured figure: its goal and the floor it is measured against, met or not."""

    bench: str  # the benchmark that measured it
    name: str  # what was measured
    value: str  # as measured, with its unit
    goal: str = ""  # "" when the figure has no goal (context, for information)
    floor: str = ""  # what the figure is measured against, side by side in the same run
    met: bool | None = None  # None when there is no goal

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "NOT met")


def print_figures(figures: list[Figure]) -> None:
    """The figures of one benchmark, as it prints them when run alone."""
    for figure in figures:
        against = f" (against {figure.floor})" if figure.floor else ""
        goal = f"; goal {figure.goal}: {figure.verdict}" if figure.goal else ""
        print(f"{figure.name}: {figure.value}{against}{goal}")


def machine() -> str:
    """This machine in one line: CPU, cores, memory, load, Python (the table's heading)."""
    cpu = platform.processor() or _cpu_model() or platform.machine()
    memory = _meminfo_gib()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, load {load}; "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}"
    )


def table(figures: list[Figure]) -> str:
    """The Markdown table docs/BENCHMARKS.md keeps (and `make bench` prints)."""
    lines = [
        "| benchmark | figure | measured | goal | measured against | met |",
        "|---|---|---|---|---|---|",
    ]
    for f in figures:
        cells = (f.bench, f.name, f.value, f.goal, f.floor, f.verdict)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def _meminfo_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0
