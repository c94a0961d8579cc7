"""KPI charts: the PNG, the KPIs the digest charts, Slack's upload flow in the stand-in, `/kpi <key> chart`."""

from __future__ import annotations

import struct
import time
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.charts import kpi_chart_png, off_track_kpi_charts, send_kpi_chart
from bot.kpis import Health, health_threshold, kpi_health
from bot.slack.gateway import SlackGateway
from standin.server import StandIn
from storage.models import Direction, Kpi
from storage.reports import Reading
from tests import factories as f
from tests.query_fixtures import all_text, assert_pings_nobody, build_portal_plan, check_message

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TODAY = date(2026, 12, 2)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (right after the signature)."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def assert_chart_png(data: bytes) -> None:
    assert png_size(data) == (800, 450)
    assert 10_000 < len(data) < 400_000, len(data)


def portal_kpi(**fields: object) -> Kpi:
    values: dict[str, object] = {
        "key": "portal-adoption",
        "objective_id": 1,
        "name": "Requests via portal",
        "unit": "%",
        "baseline": 8,
        "target": 40,
        "start": date(2026, 10, 1),
        "due": date(2027, 9, 30),
    }
    values.update(fields)
    return Kpi(**values)  # type: ignore[arg-type]


# --- the PNG ------------------------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 500])
def test_charts_render_for_0_1_and_500_readings(count: int) -> None:
    readings = [
        Reading(value=8 + n * 0.03, as_of=date(2025, 1, 1) + timedelta(days=n))
        for n in range(count)
    ]
    assert_chart_png(kpi_chart_png(portal_kpi(), readings, TODAY))


@pytest.mark.parametrize(
    "fields",
    [
        {"direction": Direction.DOWN, "baseline": 48, "target": 4, "unit": "h"},
        {"baseline": 99.9, "target": 99.9, "unit": ""},  # a KPI to hold, not approach
        {"start": date(2027, 1, 1), "due": date(2027, 1, 1)},  # no span of days
    ],
)
def test_charts_render_for_odd_kpis(fields: dict[str, object]) -> None:
    kpi = portal_kpi(**fields)
    readings = [Reading(value=kpi.baseline, as_of=date(2026, 11, 1))]
    assert_chart_png(kpi_chart_png(kpi, readings, TODAY))


@pytest.mark.parametrize("direction", [Direction.UP, Direction.DOWN])
def test_the_bands_drawn_are_where_health_changes(direction: Direction) -> None:
    kpi = (
        portal_kpi()
        if direction is Direction.UP
        else portal_kpi(direction=direction, baseline=40, target=8)
    )
    worse = -1 if direction is Direction.UP else 1
    for tolerance, inside, beyond in (
        (kpi.amber_tolerance, Health.ON_TRACK, Health.AT_RISK),
        (kpi.red_tolerance, Health.AT_RISK, Health.OFF_TRACK),
    ):
        line = health_threshold(kpi, tolerance, TODAY)
        assert kpi_health(kpi, line - worse * 0.01, TODAY) is inside
        assert kpi_health(kpi, line + worse * 0.01, TODAY) is beyond


def test_chart_words_come_from_the_template_and_plan_text_is_not_trusted() -> None:
    # Plan text is drawn literally: `$\frac{$` would be bad TeX to matplotlib's mathtext.
    kpi = portal_kpi(name="<!channel> & $\\frac{$ cost", unit="$")
    assert_chart_png(kpi_chart_png(kpi, [Reading(value=10, as_of=TODAY)], TODAY))


# --- the KPIs the digest charts -----------------------------------------------------------------


def test_off_track_kpi_charts_are_the_off_track_kpis_only(engine) -> None:
    with Session(engine) as session:
        goal = f.objective(session, key="portal", title="Portal")
        year = {"baseline": 0, "target": 100, "start": date(2026, 1, 1), "due": date(2026, 12, 31)}
        behind = f.kpi(session, objective=goal, key="behind", **year)
        fine = f.kpi(session, objective=goal, key="fine", **year)
        late = f.kpi(session, objective=goal, key="late", **year)
        silent = f.kpi(session, objective=goal, key="silent", reading_every_days=7)
        # On 2026-12-02 the line expects about 92: 50 is off track, 80 at risk, 90 on track.
        f.reading(session, kpi=behind, value=50, as_of=date(2026, 11, 30))
        f.reading(session, kpi=late, value=80, as_of=date(2026, 11, 30))
        f.reading(session, kpi=fine, value=90, as_of=date(2026, 11, 30))
        f.reading(session, kpi=silent, value=30, as_of=date(2026, 11, 1))
        session.commit()
        charts = off_track_kpi_charts(session, TODAY)
    assert [c.key for c in charts] == ["behind", "silent"]
    assert charts[0].health is Health.OFF_TRACK
    for chart in charts:
        assert_chart_png(chart.png)
        assert chart.filename == f"{chart.key}-2026-12-02.png"


# --- Slack's upload flow in the stand-in --------------------------------------------------------


@pytest.fixture
def client(standin: StandIn) -> WebClient:
    return WebClient(token=standin.workspace.bot_token, base_url=standin.api_url)


def _error(call) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SlackApiError) as raised:
        call()
    return str(raised.value.response["error"])


def _start(client: WebClient, length: int) -> tuple[str, str]:
    started = client.files_getUploadURLExternal(filename="chart.png", length=length)
    return str(started["file_id"]), str(started["upload_url"])


def test_the_flow_in_order_shares_the_bytes_in_the_thread(standin, client) -> None:
    parent = client.chat_postMessage(channel="CDELIVERY", text="Weekly plan digest")
    content = PNG_SIGNATURE + b"\0" * 100
    file_id, url = _start(client, len(content))
    assert httpx.post(url, content=content).status_code == 200
    client.files_completeUploadExternal(
        files=[{"id": file_id, "title": "Adoption"}],
        channel_id="CDELIVERY",
        thread_ts=parent["ts"],
        initial_comment="The chart",
    )
    [uploaded] = standin.uploaded_files("CDELIVERY")
    assert (uploaded.id, uploaded.title, uploaded.content) == (file_id, "Adoption", content)
    assert uploaded.thread_ts == parent["ts"] and uploaded.initial_comment == "The chart"
    [reply] = [m for m in standin.messages("CDELIVERY") if m.files]
    assert reply.thread_ts == parent["ts"] and reply.files[0]["id"] == file_id


def test_steps_out_of_order_are_refused(standin, client) -> None:
    content = b"12345"
    file_id, url = _start(client, len(content))
    # Completing before the bytes arrived.
    complete = lambda fid=file_id: client.files_completeUploadExternal(  # noqa: E731
        files=[{"id": fid, "title": "t"}], channel_id="CGENERAL"
    )
    assert _error(complete) == "file_upload_not_complete"
    # An upload URL nobody issued, and a file id nobody issued.
    assert httpx.post(url.replace(file_id, "FNOSUCH"), content=content).status_code == 404
    assert _error(lambda: complete("FNOSUCH")) == "file_not_found"
    # Not the length announced.
    refused = httpx.post(url, content=content + b"6")
    assert (refused.status_code, refused.text) == (400, "length_mismatch")
    assert httpx.post(url, content=content).status_code == 200
    complete()
    # Done once: neither the upload nor the completion can be repeated.
    assert httpx.post(url, content=content).status_code == 400
    assert _error(complete) == "file_not_found"
    assert len(standin.uploaded_files()) == 1
    assert _error(lambda: client.files_getUploadURLExternal(filename="x.png", length=0)) == (
        "invalid_arguments"
    )


@pytest.mark.parametrize(
    ("channel", "error"),
    [
        ("CRANDOM", "not_in_channel"),
        ("CNOSUCH", "channel_not_found"),
        ("DOTHERS", "channel_not_found"),
    ],
)
def test_a_conversation_the_bot_cannot_post_in_is_refused_and_nothing_shared(
    standin, client, channel, error
) -> None:
    file_id, url = _start(client, 3)
    httpx.post(url, content=b"abc")
    complete = lambda: client.files_completeUploadExternal(  # noqa: E731
        files=[{"id": file_id, "title": "t"}], channel_id=channel
    )
    assert _error(complete) == error
    assert standin.uploaded_files() == []
    # The refusal left the file waiting: sharing it where the bot may still works.
    client.files_completeUploadExternal(files=[{"id": file_id}], channel_id="CGENERAL")
    assert [u.channel for u in standin.uploaded_files()] == ["CGENERAL"]


def test_the_gateway_uploads_with_files_upload_v2(standin) -> None:
    gateway = SlackGateway(WebClient(token=standin.workspace.bot_token, base_url=standin.api_url))
    png = kpi_chart_png(portal_kpi(), [Reading(value=12, as_of=TODAY)], TODAY)
    file_id = gateway.upload_file(
        channel="CGENERAL", filename="a.png", content=png, title="A", initial_comment="hi"
    )
    [uploaded] = standin.uploaded_files("CGENERAL")
    assert uploaded.id == file_id and uploaded.content == png
    assert [c.method for c in standin.calls() if c.method.startswith("files.")] == [
        "files.getUploadURLExternal",
        "files.upload",
        "files.completeUploadExternal",
    ]


# --- /kpi <key> chart ---------------------------------------------------------------------------


@pytest.fixture
def plan(services):
    with Session(services.engine, expire_on_commit=False) as session:
        return build_portal_plan(session)


def chart_command(bot, text: str, *, channel: str = "CDELIVERY", user: str = "UALICE"):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    response = bot.command("/kpi", text, user_id=user, channel_id=channel)
    assert response.status_code == 200
    assert time.monotonic() - started < 3
    return response


@pytest.mark.parametrize(
    "text", ["portal-adoption chart", "PORTAL-ADOPTION Chart", "requests via portal chart"]
)
def test_the_chart_is_uploaded_where_it_was_asked(bot, plan, text) -> None:
    response = chart_command(bot, text)
    assert response.text == ""  # a bare ack: the chart comes after it
    bot.standin.wait_for("files.completeUploadExternal", timeout=20)
    bot.wait_idle()
    [uploaded] = bot.standin.uploaded_files("CDELIVERY")
    assert_chart_png(uploaded.content or b"")
    assert uploaded.filename.startswith("portal-adoption-") and uploaded.filename.endswith(".png")
    assert "Requests via portal" in uploaded.title
    assert (
        "*Requests via portal*" in uploaded.initial_comment
        and "<@UALICE>" in uploaded.initial_comment
    )
    assert bot.standin.ephemerals("UALICE") == []


@pytest.mark.parametrize("channel", ["CRANDOM", "DALICEBOB"])
def test_where_the_bot_cannot_post_the_chart_goes_to_the_askers_dm(bot, plan, channel) -> None:
    chart_command(bot, "portal-adoption chart", channel=channel)
    bot.standin.wait_for("response_url", timeout=20)
    bot.wait_idle()
    dm = bot.standin.dm_channel("UALICE")
    [uploaded] = bot.standin.uploaded_files()
    assert uploaded.channel == dm
    assert_chart_png(uploaded.content or b"")
    [said] = bot.standin.ephemerals("UALICE")
    assert said.channel == channel
    assert "I cannot post in this conversation" in said.text and "direct message" in said.text


def test_a_kpi_not_named_exactly_gets_the_no_match_answer_and_nothing_is_uploaded(
    bot, plan
) -> None:
    for text in ("portal chart", "portal-adopshun chart"):
        message = chart_command(bot, text).json()
        check_message(message)
        assert "No KPI matches" in all_text(message)
    assert "Did you mean" in all_text(chart_command(bot, "portal-adopshun chart").json())
    bot.wait_idle()
    assert bot.standin.calls("files.getUploadURLExternal") == []


def test_chart_alone_says_what_to_write(bot, plan) -> None:
    message = chart_command(bot, "chart").json()
    check_message(message)
    assert_pings_nobody(message)
    assert "Name the KPI before `chart`" in all_text(message)
    bot.wait_idle()
    assert bot.standin.calls("files.getUploadURLExternal") == []


def test_the_card_is_still_answered_without_chart(bot, plan) -> None:
    assert "Readings, newest first" in all_text(chart_command(bot, "portal-adoption").json())


def test_a_kpi_archived_meanwhile_is_told_politely(services, plan, standin) -> None:
    with pytest.raises(Exception, match=r"no longer a KPI|chart\.kpi_gone"):
        send_kpi_chart(
            services,
            kpi_key="no-such-kpi",
            channel_id="CDELIVERY",
            user_id="UALICE",
            now=datetime(2026, 12, 2, 15, tzinfo=UTC),
        )
    assert standin.uploaded_files() == []
