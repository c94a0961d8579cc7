"""Links to the bot's own messages for lists (/plan alerts, App Home): chat.getPermalink, once per message.

A list may point at dozens of messages and a slash command is answered in its ack, within
Slack's 3 seconds, so the links are fetched side by side under a time budget: a line whose link
is not back in time is shown without it. A message's permalink never changes, so each one is
kept (per gateway, bounded) and asked for once per process; a lookup that outlives its budget
still fills the cache for the next list.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from weakref import WeakKeyDictionary

from bot.slack.errors import SlackError
from bot.slack.gateway import SlackGateway

log = logging.getLogger(__name__)

Message = tuple[str, str]  # (channel ID, ts)

LOOKUP_SECONDS = 1.5  # half of the 3 seconds a slash command's ack has
WORKERS = 8  # chat.getPermalink is Tier 4 (100+ a minute): a short burst is fine
CACHE_SIZE = 5000
# A link is put into mrkdwn as <url|label>: only a plain http(s) URL may be, nothing that
# could close the token or start another.
SAFE_URL = re.compile(r"https?://[^\s<>|]+")


def linkable(channel: str | None, ts: str | None) -> bool:
    """A message in a conversation others can open: not a DM (only its recipient could follow it)."""
    return bool(channel and ts and channel[0] in "CG")


class _Cache:
    def __init__(self, size: int) -> None:
        self._links: OrderedDict[Message, str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, message: Message) -> str | None:
        with self._lock:
            link = self._links.get(message)
            if link is not None:
                self._links.move_to_end(message)
            return link

    def put(self, message: Message, link: str) -> None:
        with self._lock:
            self._links[message] = link
            self._links.move_to_end(message)
            while len(self._links) > self._size:
                self._links.popitem(last=False)


_caches: WeakKeyDictionary[SlackGateway, _Cache] = WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache_of(slack: SlackGateway) -> _Cache:
    with _caches_lock:
        cache = _caches.get(slack)
        if cache is None:
            cache = _caches[slack] = _Cache(CACHE_SIZE)
        return cache


class MessageLinks:
    """Permalinks of messages the bot posted, for lines that point at them."""

    def __init__(self, slack: SlackGateway, *, seconds: float = LOOKUP_SECONDS) -> None:
        self.slack = slack
        self.seconds = seconds
        self._cache = _cache_of(slack)

    def of(self, messages: Iterable[tuple[str | None, str | None]]) -> dict[Message, str]:
        """The links of those `messages` that are linkable and answered within the budget."""
        wanted = list(dict.fromkeys((c, t) for c, t in messages if c and t and linkable(c, t)))
        found: dict[Message, str] = {}
        missing: list[Message] = []
        for message in wanted:
            link = self._cache.get(message)
            if link is None:
                missing.append(message)
            else:
                found[message] = link
        if not missing:
            return found
        pool = ThreadPoolExecutor(
            max_workers=min(WORKERS, len(missing)), thread_name_prefix="permalink"
        )
        futures: dict[Future[str | None], Message] = {
            pool.submit(self._fetch, message): message for message in missing
        }
        done, late = wait(futures, timeout=self.seconds)
        # Not waited for: the late ones finish on their own and land in the cache.
        pool.shutdown(wait=False, cancel_futures=True)
        if late:
            log.info("%d message links were not back in time; shown without them", len(late))
        for future in done:
            link = future.result()
            if link is not None:
                found[futures[future]] = link
        return found

    def _fetch(self, message: Message) -> str | None:
        channel, ts = message
        try:
            link = self.slack.permalink(channel=channel, ts=ts)
        except SlackError as exc:
            # The line still says everything; only the pointer to its message is missing.
            log.info("No permalink for %s/%s: %s", channel, ts, exc.code)
            return None
        if not SAFE_URL.fullmatch(link):
            log.warning("Ignored a permalink that is not a plain URL for %s/%s", channel, ts)
            return None
        self._cache.put(message, link)
        return link
