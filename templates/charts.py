"""The words of a KPI chart (title, axis, legend), from templates/text/kpi_chart.yaml."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import yaml

from templates import TEMPLATE_DIR, render_text_source

CHART_TEXT = TEMPLATE_DIR / "text" / "kpi_chart.yaml"


@lru_cache(maxsize=1)
def _sources() -> dict[str, str]:
    loaded = yaml.safe_load(CHART_TEXT.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in loaded.items()}


def chart_labels(**context: Any) -> dict[str, str]:
    """Every label of the chart, rendered for one KPI (see the YAML file for the context)."""
    return {
        name: render_text_source(source, **context).strip() for name, source in _sources().items()
    }
