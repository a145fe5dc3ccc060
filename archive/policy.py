"""When a post is worth archiving again: pure decisions on what the catalogue holds.

No Scrapy here: the crawl's components (``crawler.incremental``, ``pipelines.dedup``,
``crawler.shared``) ask these functions and act on the answer.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from archive.catalogue import PostRow

if TYPE_CHECKING:
    from archive.state import CrawlState


def content_hash(title: str, link: str | None, body: str | None) -> str:
    """What, when it changes, makes a post worth archiving again: its title, link and body
    (the feed's text, or for a post without feed text, its page)."""
    h = hashlib.sha256()
    for part in (title, link or "", body or ""):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\0")
    return h.hexdigest()


def retry_due(incomplete_runs: int, retries: int) -> bool:
    """A post archived ``incomplete_runs`` times in a row without its page or an image is to be
    fetched again (``POSTARC_RETRY_INCOMPLETE`` = ``retries`` later runs at most: a dead image
    must not make every run fetch its post)."""
    return 0 < incomplete_runs <= retries


def is_unchanged(known: PostRow | None, digest: str, posts_dir: Path, retries: int) -> bool:
    """The archive already holds this version of the post, whole or past retrying (and its
    Markdown is still there)."""
    return (known is not None and known.content_hash == digest and (posts_dir / f"{known.path}.md").exists()
            and not retry_due(known.incomplete_runs, retries))


def merged_as(state: CrawlState, source: str, guid: str) -> PostRow | None:
    """What a feed entry merged into another feed's post (one story, ``dedup: across``) is
    archived as: that post's row with the entry's own hash, so that ``is_unchanged`` answers
    for it as for a post of its own."""
    member = state.story_member(source, guid)
    if member is None or member.owner == (source, guid):
        return None
    owner = state.post(*member.owner)
    return dataclasses.replace(owner, content_hash=member.content_hash, incomplete_runs=0) if owner else None


def parse_time(value: str | None) -> datetime | None:
    """A time the catalogue holds (``last_run``: ISO 8601), or None."""
    return datetime.fromisoformat(value) if value else None
