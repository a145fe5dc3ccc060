"""What a crawl reads and writes about an archive while it runs: one interface, two stores.

- ``archive.catalogue.Catalogue`` — ``DIR/state.sqlite``, the default: one crawl process per
  archive (``crawler.lock``), nothing to run besides it.
- ``archive.state_redis.RedisState`` — Redis, for several workers on one or more machines
  crawling into one archive: what they must agree on (posts already archived and their content
  hashes, paths, the story index, feed validators, payload digests for revisits, who writes
  which post) is in
  Redis, and each change is also written to ``state.sqlite`` for the tools that read the
  archive (replay, verify, export-wacz, reextract).

``crawler.state.open_state`` picks one from the settings.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from typing import Any, Protocol

from archive.catalogue import PostRow, StoryMember


class CrawlState(Protocol):
    def post(self, source: str, guid: str) -> PostRow | None:
        """The archived row of a post, if any."""

    def claim_post(self, source: str, guid: str, content_hash: str) -> bool:
        """Ask to write this version of a post; False: another live writer has it."""

    def claim_path(self, path: str, source: str, guid: str) -> bool:
        """Ask for ``path`` (under ``posts/``) for this post; False: another post has it."""

    def save_post(self, row: PostRow) -> None: ...

    def story_owners(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        """The post (source, guid) each known story key names (``archive.stories``)."""

    def story_lock(self) -> AbstractContextManager[None]:
        """Held while a story is looked for and claimed, against every process of the crawl."""

    def claim_story_keys(self, keys: list[str], source: str, guid: str, replace: bool = False) -> None:
        """Name this post for each key that names none yet (first wins; all with ``replace``)."""

    def story_member(self, source: str, guid: str) -> StoryMember | None:
        """The story a feed entry belongs to (``dedup: across``), if it was archived so."""

    def story_members(self, owner_source: str, owner_guid: str) -> list[StoryMember]:
        """Every entry of the story a post holds, in the order the feeds brought it."""

    def save_story_member(self, member: StoryMember) -> None:
        """Add or update an entry of a story (its ``seq`` stays the first one given)."""

    def source_state(self, name: str) -> dict[str, Any] | None:
        """``url``, ``etag``, ``last_modified``, ``last_run``, ``last_status`` of a source."""

    def save_source_state(self, name: str, **values: Any) -> None:
        """Update the given fields of a source's state (the others are kept)."""

    def payload(self, digest: str) -> dict[str, str] | None:
        """The first capture of a payload: ``uri``, ``date``, ``filename``, ``record_id``."""

    def save_payload(self, digest: str, uri: str, date: str, filename: str, record_id: str) -> None:
        """Remember the first capture of a payload (a later one for the same digest is ignored)."""

    def forget_payloads(self, filename: str, keep: Collection[str]) -> int:
        """Drop the digests of ``filename`` whose record is not among ``keep`` (cut by a repair)."""

    def close(self) -> None: ...
