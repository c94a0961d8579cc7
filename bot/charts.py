"""KPI charts: a PNG per KPI (readings, the expected trajectory with its amber and red bands, the
target date, today) and its delivery to a Slack conversation, or privately when the bot cannot post there.

The bands come from the health rules of `bot.kpis` (`health_threshold` is the inverse of the
shortfall those rules measure), so a reading drawn in the red band is exactly a reading that
makes the KPI off track. Matplotlib is used through its object API on the Agg canvas (no pyplot,
no global figure state), so charts can be drawn from several threads at once.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlmodel import Session

from bot.errors import NotFound
from bot.health import plan_today
from bot.kpis import Health, KpiLike, expected_value, health_threshold, kpi_health, kpi_off_track
from bot.problems import ProblemCode, problem
from bot.slack.errors import ChannelNotFound, NotInChannel
from storage import reports as q
from storage.db import session_scope
from storage.plan import plan_timezone
from templates import render_mrkdwn
from templates.charts import chart_labels

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

# 800 x 450 px: what Slack's preview shows without scaling the text away.
CHART_INCHES = (8.0, 4.5)
CHART_DPI = 100
# Readings drawn per chart: years of weekly readings; a longer history keeps its newest part.
CHART_HISTORY = 2000
# Markers help up to about this many readings; beyond it they blot the line.
MARKER_LIMIT = 60
# Points along the trajectory and its bands (they bend only at start and due; the rest is slack).
BAND_POINTS = 400

ON_TRACK_COLOUR = "#1f4e79"
TRAJECTORY_COLOUR = "#5a5a5a"
AMBER_COLOUR = "#f2a900"
RED_COLOUR = "#d62728"
TODAY_COLOUR = "#2b8a3e"


class ChartProblem(ProblemCode):
    """What can stop a chart being sent."""

    KPI_GONE = "chart.kpi_gone"  # key


class ChartKpi(KpiLike, Protocol):
    """The KPI fields a chart reads (a `storage.models.Kpi`)."""

    key: str
    name: str
    unit: str


@dataclass(frozen=True)
class KpiChart:
    """One KPI's chart, ready to upload."""

    key: str
    name: str
    health: Health
    png: bytes
    filename: str
    title: str  # the file's title in Slack


@dataclass(frozen=True)
class ChartDelivery:
    """Where a chart went: `privately` when the asked-in conversation refused it (a DM instead)."""

    chart: KpiChart
    channel: str
    file_id: str
    privately: bool


def _ensure_matplotlib_config_dir() -> None:
    """Matplotlib warns (and rebuilds its font cache every time) when its config dir is not writable."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    wanted = config_home / "matplotlib"
    try:
        wanted.mkdir(parents=True, exist_ok=True)
        if os.access(wanted, os.W_OK):
            return
    except OSError:
        pass
    os.environ["MPLCONFIGDIR"] = tempfile.mkdtemp(prefix="planpulse-matplotlib-")


def _matplotlib() -> tuple[Any, Any, Any]:
    """Figure, the Agg canvas and matplotlib.dates, imported on first use (the import takes ~0.5 s,
    which the server's start-up and every command but a chart should not pay)."""
    _ensure_matplotlib_config_dir()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return Figure, FigureCanvasAgg, mdates


def _days(first: date, last: date) -> list[date]:
    """Evenly spread days from `first` to `last`, both included."""
    span = max((last - first).days, 0)
    step = max(span // BAND_POINTS, 1)
    days = [first + timedelta(days=n) for n in range(0, span + 1, step)]
    if days[-1] != last:
        days.append(last)
    return days


def kpi_chart_png(kpi: ChartKpi, readings: Sequence[q.Reading], today: date) -> bytes:
    """The chart of one KPI as a PNG of 800 x 450 px; `readings` oldest first (any number, even none)."""
    Figure, FigureCanvasAgg, mdates = _matplotlib()
    readings = sorted(readings, key=lambda r: r.as_of)
    labels = {
        # Matplotlib reads text between two `$` as TeX (and fails on bad TeX): plan text is literal.
        name: text.replace("$", r"\$")
        for name, text in chart_labels(
            name=kpi.name,
            key=kpi.key,
            unit=kpi.unit,
            target=kpi.target,
            due=kpi.due.isoformat(),
            day=today.isoformat(),
            count=len(readings),
        ).items()
    }
    first = min([kpi.start, today] + [r.as_of for r in readings[:1]])
    last = max([kpi.due, today] + [r.as_of for r in readings[-1:]])
    pad = timedelta(days=max((last - first).days // 40, 1))
    days = _days(first - pad, last + pad)
    expected = [expected_value(kpi, d) for d in days]
    amber = [health_threshold(kpi, kpi.amber_tolerance, d) for d in days]
    red = [health_threshold(kpi, kpi.red_tolerance, d) for d in days]

    values = [r.value for r in readings]
    low = min(values + expected + red + [kpi.baseline, kpi.target])
    high = max(values + expected + red + [kpi.baseline, kpi.target])
    margin = (high - low) * 0.08 or max(abs(high) * 0.1, 1.0)
    bottom, top = low - margin, high + margin
    # Beyond the red line lies "off track": below it for a KPI that should rise, above otherwise.
    edge = top if kpi.direction == "down" else bottom

    figure = Figure(figsize=CHART_INCHES, dpi=CHART_DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.fill_between(
        days, amber, red, color=AMBER_COLOUR, alpha=0.25, lw=0, label=labels["amber_band"]
    )
    ax.fill_between(
        days, red, [edge] * len(days), color=RED_COLOUR, alpha=0.12, lw=0, label=labels["red_band"]
    )
    ax.plot(days, expected, color=TRAJECTORY_COLOUR, lw=1.5, ls="--", label=labels["trajectory"])
    if readings:
        ax.plot(
            [r.as_of for r in readings],
            values,
            color=ON_TRACK_COLOUR,
            lw=2,
            marker="o" if len(readings) <= MARKER_LIMIT else None,
            markersize=4,
            label=labels["readings"],
        )
    else:
        ax.text(
            0.5,
            0.5,
            labels["no_readings"],
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=14,
            color=TRAJECTORY_COLOUR,
        )
    ax.axvline(kpi.due, color=TRAJECTORY_COLOUR, lw=1, ls=":", label=labels["target_date"])
    ax.axvline(today, color=TODAY_COLOUR, lw=1.5, label=labels["today"])
    ax.set_ylim(bottom, top)
    ax.set_xlim(days[0], days[-1])
    ax.set_ylabel(labels["y_axis"], fontsize=12)
    ax.set_title(labels["title"], fontsize=14, loc="left")
    locator = mdates.AutoDateLocator(maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.tick_params(labelsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=9, framealpha=0.85, ncol=2)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=CHART_DPI)
    return out.getvalue()


def kpi_chart(kpi: ChartKpi, readings: Sequence[q.Reading], today: date) -> KpiChart:
    """The PNG of one KPI with what its upload needs (file name, title, health today)."""
    latest = max(readings, key=lambda r: r.as_of) if readings else None
    labels = chart_labels(
        name=kpi.name,
        key=kpi.key,
        unit=kpi.unit,
        target=kpi.target,
        due=kpi.due.isoformat(),
        day=today.isoformat(),
        count=len(readings),
    )
    return KpiChart(
        key=kpi.key,
        name=kpi.name,
        health=kpi_health(kpi, latest.value if latest else None, today),
        png=kpi_chart_png(kpi, readings, today),
        filename=f"{kpi.key}-{today.isoformat()}.png",
        title=labels["file_title"],
    )


def off_track_kpi_charts(session: Session, today: date) -> list[KpiChart]:
    """The chart of every live KPI off track on `today` (the plan's day), in objective then key order.

    Off track as detection sees it (`bot.kpis.kpi_off_track`): beyond the red tolerance, or its
    reading overdue. The weekly digest puts these in its thread.
    """
    charts = []
    for row in q.scorecard_rows(session=session, history=CHART_HISTORY):
        latest = row.readings[-1] if row.readings else None
        if kpi_off_track(
            row.kpi,
            value=latest.value if latest else None,
            as_of=latest.as_of if latest else None,
            reading_every_days=row.kpi.reading_every_days,
            day=today,
        ):
            charts.append(kpi_chart(row.kpi, row.readings, today))
    return charts


def _plan_day(session: Session, now: datetime) -> date:
    return plan_today(now, plan_timezone(session=session))


def send_kpi_chart(
    services: Services,
    *,
    kpi_key: str,
    channel_id: str,
    user_id: str,
    now: datetime,
    thread_ts: str | None = None,
) -> ChartDelivery:
    """Draw one KPI's chart and upload it to `channel_id` (in `thread_ts` when given).

    Where the bot cannot post (not a member, an unknown channel, a DM between other people),
    the chart goes to the asker's DM with the bot instead, and the delivery says `privately`.
    """
    with session_scope(services.engine) as session:
        kpi = q.exact_kpi(session=session, query=kpi_key)
        if kpi is None:
            raise NotFound(problem(ChartProblem.KPI_GONE, key=kpi_key))
        day = _plan_day(session, now)
        readings = q.recent_readings(
            session=session, kpi_ids=[kpi.id or 0], per_kpi=CHART_HISTORY
        ).get(kpi.id or 0, [])
        chart = kpi_chart(kpi, readings, day)
    comment = render_mrkdwn(
        "blocks/kpi_chart_comment.txt.j2",
        kpi_name=chart.name,
        key=chart.key,
        asker=user_id,
        day=day,
    )

    def upload(channel: str, thread: str | None) -> str:
        return services.slack.upload_file(
            channel=channel,
            filename=chart.filename,
            content=chart.png,
            title=chart.title,
            initial_comment=comment,
            thread_ts=thread,
        )

    try:
        file_id = upload(channel_id, thread_ts)
        return ChartDelivery(chart=chart, channel=channel_id, file_id=file_id, privately=False)
    except (NotInChannel, ChannelNotFound) as exc:
        log.info(
            "chart of %s not postable in %s (%s): sent privately", chart.key, channel_id, exc.code
        )
    dm = services.slack.open_dm(user_id)
    return ChartDelivery(chart=chart, channel=dm, file_id=upload(dm, None), privately=True)
