"""Stories pipeline: one post per story across feeds (``dedup: across``, docs/sources.md).

After extraction, where the page's canonical URL and the body's fingerprint are known
(``archive.stories``). A post whose story another feed's post already holds is not written
again: its feed URL and categories are added to that post's front matter (``sources:``,
``categories:``), the file rewritten atomically only when that changes anything, and the entry
is remembered in the crawl state's story index, so that a later run skips it unchanged before
any request (``archive.policy.merged_as``). A story's first post claims its keys there.

Entries of one feed are never merged with each other: the feed says they are distinct (and a
site whose every page names one canonical URL would otherwise be one post). Posts are written
concurrently, so a post that finds its story being written in this run waits for that post.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import DropItem
from scrapy.utils.asyncio import run_in_thread
from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.task import deferLater

from archive.catalogue import PostRow, StoryMember
from archive.frontmatter import with_story
from archive.markdown import atomic_write, inside
from archive.stories import decode_sketch, encode_sketch, mark_keys, same_story, story_url, url_key
from archive.text import NAME_MAX, plain_text
from crawler.items import Post
from crawler.ledger import MERGED, ledger_of
from crawler.state import state_of

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from archive.state import CrawlState

POLL_S = 0.25  # how often a story's post being written by another process is looked for


def url_keys(item: Post) -> list[str]:
    """The story's URL keys: the page's canonical URL, then the entry's link, both without
    tracking parameters."""
    urls = [item.page_canonical, story_url(item.link)]
    return list(dict.fromkeys(url_key(u) for u in urls if u))


def story_fields(members: list[StoryMember]) -> tuple[list[str], list[str]]:
    """(feed URLs, categories) of a story's entries, in the order they came, without repeats."""
    sources = list(dict.fromkeys(m.feed_url for m in members))
    categories = list(dict.fromkeys(c for m in members for c in m.categories))
    return sources, categories


def update_story_file(path: Path, sources: list[str], categories: list[str], fsync: bool) -> bool:
    """Set the story's sources and categories in a post file; whether it was written."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return False
    updated = with_story(text, sources, categories)
    if updated is None:
        return False
    atomic_write(path, updated.encode("utf-8"), fsync=fsync)
    return True


class StoryPipeline:
    def __init__(self, archive_dir: Path, crawler: Crawler) -> None:
        self.posts_dir = archive_dir.resolve() / "posts"
        self.archive_state = state_of(crawler)
        self.ledger = ledger_of(crawler)
        self.stats = crawler.stats
        self.writing: dict[tuple[str, str], Deferred[None]] = {}  # stories' first posts under way
        self.done: set[tuple[str, str]] = set()  # stories' first posts this process finished with
        self.wait_s = crawler.settings.getfloat("POSTARC_STORY_WAIT")
        self.fsync = crawler.settings.getbool("POSTARC_FSYNC_FILES")
        self.locks: dict[str, DeferredLock] = {}  # one rewrite of a post file at a time

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pipeline = cls(Path(crawler.settings["POSTARC_ARCHIVE_DIR"]), crawler)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            crawler.signals.connect(pipeline.item_done, signal=signal)
        return pipeline

    @property
    def state(self) -> CrawlState:
        return self.archive_state.state

    def item_done(self, item: Any, **kwargs: Any) -> None:
        """A story's first post is written (or failed): the entries waiting on it go on."""
        if isinstance(item, Post) and (waiting := self.writing.pop((item.source, item.guid), None)):
            self.done.add((item.source, item.guid))
            waiting.callback(None)

    async def process_item(self, item: Post) -> Post:
        if item.dedup != "across":
            return item
        me = (item.source, item.guid)
        if item.rebuilt:  # postarc reextract: the story as the index has it, nothing merged anew
            self.fill(item)
            return item
        member = self.state.story_member(*me)
        claimed = False
        if member is not None:
            owner = member.owner
        elif item.is_update:
            owner = me
        else:
            owner = self.claim(item)
            claimed = owner == me
        replace = False
        if owner != me:
            if (row := await self.story_post(owner)) is not None:
                await self.merge(item, row)
                raise DropItem(f"one story with {row.path}: {item.guid}", log_level="DEBUG")
            replace = True  # the story's first post was never written: this one holds it now
        if not claimed:
            self.save_member(item, me, member)
            self.state.claim_story_keys(url_keys(item) + mark_keys(item.sketch), *me, replace=replace)
        self.writing.setdefault(me, Deferred())
        self.fill(item)
        return item

    def claim(self, item: Post) -> tuple[str, str]:
        """The post of another feed that holds this story (``find``), or else this one, with
        the story's keys claimed for it.

        Both under the state's story lock: of two processes (``--processes``, Redis workers)
        meeting one story at once, the second finds the first's keys, fingerprint marks too.
        """
        me = (item.source, item.guid)
        with self.state.story_lock():
            if (owner := self.find(item)) is not None:
                return owner
            self.save_member(item, me, None)  # its sketch first: whoever finds its marks reads it
            self.state.claim_story_keys(url_keys(item) + mark_keys(item.sketch), *me)
        return me

    def find(self, item: Post) -> tuple[str, str] | None:
        """The post of another feed that holds this story: by URL, else by fingerprint. The
        entry's URL keys that name no post yet are claimed for it on the way (a later entry
        with that URL is led through it to the story)."""
        urls, marks = url_keys(item), mark_keys(item.sketch)
        self.state.claim_story_keys(urls, item.source, item.guid)
        owners = self.state.story_owners(urls + marks)
        for key in urls:
            if (owner := owners.get(key)) and owner[0] != item.source:
                return owner
        candidates = dict.fromkeys(o for k in marks if (o := owners.get(k)) and o[0] != item.source)
        for owner in candidates:
            known = self.state.story_member(*owner)
            if known and known.owner == owner and same_story(item.sketch, decode_sketch(known.sketch)):
                return owner
        return None

    async def story_post(self, owner: tuple[str, str]) -> PostRow | None:
        """The post row of the story ``owner`` holds, once written: waited for when this run (or
        another process) writes it now, followed when ``owner`` was itself merged into another
        post; None if it never comes (its writing failed, or ``POSTARC_STORY_WAIT`` passed)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            if (row := self.state.post(*owner)) is not None:
                return row
            member = self.state.story_member(*owner)
            if member is not None and member.owner != owner:
                owner = member.owner
            elif (waiting := self.writing.get(owner)) is not None:
                await maybe_deferred_to_future(waiting)
            elif owner in self.done:
                return None  # this process was writing it, and failed
            elif time.monotonic() > deadline:
                return None
            else:  # claimed by another process, not written yet
                from twisted.internet import reactor  # the one Scrapy installed

                await maybe_deferred_to_future(deferLater(reactor, POLL_S, lambda: None))

    def save_member(self, item: Post, owner: tuple[str, str], known: StoryMember | None) -> None:
        self.state.save_story_member(StoryMember(
            source=item.source, guid=item.guid, owner_source=owner[0], owner_guid=owner[1],
            feed_url=item.feed_url, categories=[c for c in (plain_text(c, NAME_MAX) for c in item.categories) if c],
            content_hash=item.content_hash,
            sketch=encode_sketch(item.sketch), seq=known.seq if known else time.time_ns()))

    def fill(self, item: Post) -> None:
        """The story's sources and categories on its post, when more than one feed carried it."""
        sources, categories = story_fields(self.state.story_members(item.source, item.guid))
        if len(sources) > 1:
            item.story_sources, item.story_categories = sources, categories

    async def merge(self, item: Post, row: PostRow) -> None:
        """Add this entry to the story ``row`` holds, and its feed and categories to the file."""
        self.save_member(item, (row.source, row.guid), self.state.story_member(item.source, item.guid))
        self.ledger.inc(item.source, MERGED)
        self.stats.inc_value("postarc/stories/merged")
        sources, categories = story_fields(self.state.story_members(row.source, row.guid))
        if len(sources) < 2:
            return  # another entry of the story's own feed: nothing to show
        if row.categories != categories:  # the replay's filters read them from the catalogue
            self.state.save_post(dataclasses.replace(row, categories=categories))
        path = inside(self.posts_dir, row.path + ".md")
        lock = self.locks.setdefault(row.path, DeferredLock())
        await maybe_deferred_to_future(lock.acquire())
        try:
            if await run_in_thread(update_story_file, path, sources, categories, self.fsync):
                self.stats.inc_value("postarc/stories/files_updated")
        finally:
            lock.release()
