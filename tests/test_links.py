"""Links to the bot's own messages: chat.getPermalink once per message, DMs and odd answers left out."""

from __future__ import annotations

from bot.links import MessageLinks, linkable
from bot.slack.errors import SlackError


def test_links_are_looked_up_once_and_dms_never(services, standin):
    posted = services.slack.post_message(channel="CDELIVERY", text="an alert")
    dm = services.slack.post_message(channel="UALICE", text="told by DM")
    standin.reset_calls()
    links = MessageLinks(services.slack)
    wanted = [(posted.channel, posted.ts), (dm.channel, dm.ts), ("CDELIVERY", None), (None, "1.0")]
    found = links.of(wanted)
    assert found == {
        (
            posted.channel,
            posted.ts,
        ): f"{standin.url}archives/CDELIVERY/p{posted.ts.replace('.', '')}"
    }
    assert MessageLinks(services.slack).of(wanted * 3) == found  # kept for the process
    assert len(standin.calls("chat.getPermalink")) == 1


def test_a_message_slack_cannot_find_has_no_link(services, standin):
    posted = services.slack.post_message(channel="CDELIVERY", text="an alert")
    found = MessageLinks(services.slack).of([("CDELIVERY", "1.000001"), ("CDELIVERY", posted.ts)])
    assert list(found) == [("CDELIVERY", posted.ts)]


class _OddSlack:
    """A gateway whose permalinks could break out of a <url|label> token, or fail."""

    def permalink(self, *, channel: str, ts: str) -> str:
        if channel == "CFAIL":
            raise SlackError("ratelimited", method="chat.getPermalink")
        return "https://x.slack.com/archives/C1/p1|<!channel>"


def test_a_permalink_that_is_not_a_plain_url_is_ignored():
    assert MessageLinks(_OddSlack()).of([("C1", "1.0"), ("CFAIL", "2.0")]) == {}  # type: ignore[arg-type]


def test_only_conversations_are_linkable():
    assert linkable("C123", "1.0") and linkable("G123", "1.0")
    assert not linkable("D123", "1.0") and not linkable("", "1.0") and not linkable("C1", "")
