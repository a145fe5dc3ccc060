"""``state.sqlite``: what the archive holds, for incremental runs, revisits and replay.

SQLite in WAL mode so the crawl's components (each with its own connection) and a replay
server can read while one writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from archive.frontmatter import body_words, read_front_matter
from archive.stories import encode_sketch, mark_keys, sketch, story_url, url_key

SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    source        TEXT NOT NULL,
    guid          TEXT NOT NULL,
    link          TEXT,
    title         TEXT NOT NULL,
    path          TEXT NOT NULL UNIQUE,
    date          TEXT,
    date_raw      TEXT,
    date_source   TEXT,
    content_hash  TEXT,
    body_source   TEXT,
    categories    TEXT NOT NULL DEFAULT '[]',
    warc_filename TEXT,
    record_id     TEXT,
    archived      TEXT NOT NULL,
    updated       TEXT,
    incomplete_runs INTEGER NOT NULL DEFAULT 0,
    page_etag     TEXT,
    page_last_modified TEXT,
    PRIMARY KEY (source, guid)
);
CREATE TABLE IF NOT EXISTS sources (
    name          TEXT PRIMARY KEY,
    url           TEXT,
    etag          TEXT,
    last_modified TEXT,
    last_run      TEXT,
    last_status   TEXT,
    backfill      TEXT
);
CREATE TABLE IF NOT EXISTS versions (
    source        TEXT NOT NULL,
    guid          TEXT NOT NULL,
    captured      TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    title         TEXT NOT NULL,
    capture_uri   TEXT,
    capture_date  TEXT,
    record_id     TEXT,
    warc_filename TEXT,
    markdown_filename TEXT,
    markdown_offset   INTEGER,
    PRIMARY KEY (source, guid, captured)
);
CREATE TABLE IF NOT EXISTS payloads (
    digest    TEXT PRIMARY KEY,
    uri       TEXT NOT NULL,
    date      TEXT NOT NULL,
    filename  TEXT NOT NULL,
    record_id TEXT NOT NULL
);
"""
#: The story index (``dedup: across``), made in one transaction with its first contents
#: (``Catalogue._story_tables``).
STORY_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS story_keys (
    key    TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    guid   TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS story_members (
    source       TEXT NOT NULL,
    guid         TEXT NOT NULL,
    owner_source TEXT NOT NULL,
    owner_guid   TEXT NOT NULL,
    feed_url     TEXT NOT NULL,
    categories   TEXT NOT NULL DEFAULT '[]',
    content_hash TEXT,
    sketch       TEXT,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (source, guid)
)""",
    """CREATE INDEX IF NOT EXISTS story_members_owner ON story_members (owner_source, owner_guid, seq)""",
)


@dataclass
class PostRow:
    source: str
    guid: str
    title: str
    path: str
    archived: str
    link: str | None = None
    date: str | None = None
    date_raw: str | None = None
    date_source: str | None = None
    content_hash: str | None = None
    body_source: str | None = None
    categories: list[str] = field(default_factory=list)
    warc_filename: str | None = None
    record_id: str | None = None
    updated: str | None = None
    incomplete_runs: int = 0  # archivings of this version in a row without its page or an image
    page_etag: str | None = None  # the article page's validators, for revisits
    page_last_modified: str | None = None


@dataclass
class VersionRow:
    """One version of a post: when it was captured, its hash (``archive.versions``), the capture
    record it came from and where its Markdown (the ``conversion`` record) is."""

    source: str
    guid: str
    captured: str
    content_hash: str
    title: str
    capture_uri: str | None = None
    capture_date: str | None = None  # WARC-Date of the capture
    record_id: str | None = None
    warc_filename: str | None = None
    markdown_filename: str | None = None
    markdown_offset: int | None = None


@dataclass
class StoryMember:
    """A feed entry under ``dedup: across`` and the post that holds its story: itself (the feed
    that brought the story first) or another feed's post it was merged into (docs/sources.md)."""

    source: str
    guid: str
    owner_source: str
    owner_guid: str
    feed_url: str  # front matter sources: of the story
    categories: list[str] = field(default_factory=list)  # merged into the story's categories
    content_hash: str | None = None  # of the entry (archive.policy): unchanged, it is skipped
    sketch: str | None = None  # archive.stories.encode_sketch of its body
    seq: int = 0  # when it first brought the story (ns): the order of sources:

    @property
    def owner(self) -> tuple[str, str]:
        return self.owner_source, self.owner_guid


BUSY_TIMEOUT = 60.0


def use_wal(db: sqlite3.Connection, timeout: float = BUSY_TIMEOUT) -> None:
    """Switch a new file to WAL; the mode is kept in the file, so later openers leave it be.

    SQLite answers the switch with "database is locked" at once, without its busy handler, when
    another process opens the same new file (two Redis workers starting on one archive), so
    this retries until ``timeout``.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Catalogue:
    """A connection to ``DIR/state.sqlite``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        use_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self._add_column("posts", "incomplete_runs INTEGER NOT NULL DEFAULT 0")
        self._add_column("sources", "backfill TEXT")  # feed history read so far (crawler.history)
        self._add_column("posts", "page_etag TEXT")
        self._add_column("posts", "page_last_modified TEXT")
        self._story_tables()

    def _has_table(self, name: str) -> bool:
        return self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone() is not None

    def _story_tables(self) -> None:
        """Make the story index if it is missing, with the posts a catalogue from before it holds,
        in one transaction: a kill leaves no empty index behind, and of two processes opening
        the archive at once the second finds it made."""
        if self._has_table("story_keys"):
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            if not self._has_table("story_keys"):
                for statement in STORY_SCHEMA:
                    self.db.execute(statement)
                self._index_stories()
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _index_stories(self) -> None:
        """Each post of an archive from before the story index its own story, in the order
        archived, keyed as the stories pipeline keys a post (its link's story URL and its body's
        fingerprint, from its file: the page's canonical URL was not kept), so that another
        feed's copy of an old post joins it instead of becoming a second post."""
        posts_dir = self.path.parent / "posts"
        rows = self.db.execute("SELECT source, guid, link, path, categories, content_hash, archived FROM posts "
                               "ORDER BY archived, rowid").fetchall()
        for n, row in enumerate(rows):
            try:
                meta, body = read_front_matter((posts_dir / f"{row['path']}.md").read_text("utf-8", "replace"))
            except OSError:
                meta, body = {}, ""
            fingerprint = sketch(body_words(body))
            url = story_url(row["link"])
            keys = ([url_key(url)] if url else []) + mark_keys(fingerprint)
            self.db.executemany("INSERT OR IGNORE INTO story_keys VALUES (?, ?, ?)",
                                [(k, row["source"], row["guid"]) for k in keys])
            if isinstance(feed_url := meta.get("source"), str):  # the post's feed, as its file names it
                self.db.execute("INSERT OR IGNORE INTO story_members VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                (row["source"], row["guid"], row["source"], row["guid"], feed_url, row["categories"],
                                 row["content_hash"], encode_sketch(fingerprint), _archived_ns(row["archived"]) + n))

    def _add_column(self, table: str, column: str) -> None:
        """Bring a catalogue written by an older postarc up to ``SCHEMA``."""
        name = column.split()[0]
        if any(row["name"] == name for row in self.db.execute(f"PRAGMA table_info({table})")):
            return
        try:
            self.db.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
        except sqlite3.OperationalError as exc:
            if "duplicate column" not in str(exc):  # another process added it first
                raise

    @classmethod
    def of_archive(cls, archive_dir: str | Path) -> Catalogue:
        return cls(Path(archive_dir) / "state.sqlite")

    def close(self) -> None:
        self.db.close()

    # -- posts -----------------------------------------------------------------------

    def post(self, source: str, guid: str) -> PostRow | None:
        row = self.db.execute("SELECT * FROM posts WHERE source=? AND guid=?", (source, guid)).fetchone()
        return _post_row(row) if row else None

    def claim_path(self, path: str, source: str, guid: str) -> bool:
        """Whether ``path`` is free or already this post's."""
        row = self.db.execute("SELECT source, guid FROM posts WHERE path=?", (path,)).fetchone()
        return row is None or (row["source"], row["guid"]) == (source, guid)

    def claim_post(self, source: str, guid: str, content_hash: str) -> bool:
        """Always granted: one process writes an archive at a time (``crawler.lock``), so there
        is nobody to claim against (``archive.state_redis`` claims for real)."""
        return True

    def save_post(self, row: PostRow) -> None:
        values = asdict(row)
        values["categories"] = json.dumps(row.categories, ensure_ascii=False)
        cols = ", ".join(values)
        marks = ", ".join(f":{k}" for k in values)
        updates = ", ".join(f"{k}=excluded.{k}" for k in values if k not in ("source", "guid", "archived"))
        self.db.execute(
            f"INSERT INTO posts ({cols}) VALUES ({marks}) "
            f"ON CONFLICT(source, guid) DO UPDATE SET {updates}",
            values,
        )

    def posts(self) -> Iterator[PostRow]:
        for row in self.db.execute("SELECT * FROM posts ORDER BY date DESC"):
            yield _post_row(row)

    # -- stories (dedup: across) ------------------------------------------------------

    def story_owners(self, keys: list[str]) -> dict[str, tuple[str, str]]:
        """The post each known story key (``archive.stories``: URLs, fingerprint marks) names."""
        found: dict[str, tuple[str, str]] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            marks = ", ".join("?" * len(part))
            for row in self.db.execute(f"SELECT key, source, guid FROM story_keys WHERE key IN ({marks})", part):
                found[row["key"]] = (row["source"], row["guid"])
        return found

    @contextmanager
    def story_lock(self) -> Iterator[None]:
        """SQLite's write lock, held from before a story is looked for until its keys are
        claimed: the crawl processes sharing the file meet a story one at a time."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def claim_story_keys(self, keys: list[str], source: str, guid: str, replace: bool = False) -> None:
        """Name this post for each key that names none yet (all of them with ``replace``)."""
        verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
        self.db.executemany(f"{verb} INTO story_keys VALUES (?, ?, ?)", [(k, source, guid) for k in keys])

    def story_member(self, source: str, guid: str) -> StoryMember | None:
        row = self.db.execute("SELECT * FROM story_members WHERE source=? AND guid=?", (source, guid)).fetchone()
        return _member(row) if row else None

    def story_members(self, owner_source: str, owner_guid: str) -> list[StoryMember]:
        """The entries of one story, in the order the feeds brought it."""
        rows = self.db.execute("SELECT * FROM story_members WHERE owner_source=? AND owner_guid=? ORDER BY seq",
                               (owner_source, owner_guid))
        return [_member(row) for row in rows]

    def save_story_member(self, member: StoryMember) -> None:
        """Add or update an entry of a story; its ``seq`` stays the first one given."""
        values = asdict(member)
        values["categories"] = json.dumps(member.categories, ensure_ascii=False)
        cols, marks = ", ".join(values), ", ".join(f":{k}" for k in values)
        updates = ", ".join(f"{k}=excluded.{k}" for k in values if k not in ("source", "guid", "seq"))
        self.db.execute(f"INSERT INTO story_members ({cols}) VALUES ({marks}) "
                        f"ON CONFLICT(source, guid) DO UPDATE SET {updates}", values)

    def story_rows(self) -> Iterator[tuple[str, str, str]]:
        """Every story key and its post, for copying into a shared state."""
        for row in self.db.execute("SELECT key, source, guid FROM story_keys"):
            yield row["key"], row["source"], row["guid"]

    def all_story_members(self) -> Iterator[StoryMember]:
        for row in self.db.execute("SELECT * FROM story_members"):
            yield _member(row)

    # -- versions --------------------------------------------------------------------

    def versions(self, source: str, guid: str) -> list[VersionRow]:
        """A post's versions, oldest first."""
        rows = self.db.execute("SELECT * FROM versions WHERE source=? AND guid=? ORDER BY captured",
                               (source, guid)).fetchall()
        return [VersionRow(**dict(row)) for row in rows]

    def save_version(self, row: VersionRow) -> None:
        """Add a version; one with the latest's hash replaces it (a retry of an incomplete post)."""
        latest = self.db.execute("SELECT captured, content_hash FROM versions WHERE source=? AND guid=? "
                                 "ORDER BY captured DESC LIMIT 1", (row.source, row.guid)).fetchone()
        if latest and latest["content_hash"] == row.content_hash:
            self.db.execute("DELETE FROM versions WHERE source=? AND guid=? AND captured=?",
                            (row.source, row.guid, latest["captured"]))
        values = asdict(row)
        cols, marks = ", ".join(values), ", ".join(f":{k}" for k in values)
        self.db.execute(f"INSERT OR REPLACE INTO versions ({cols}) VALUES ({marks})", values)

    def post_by(self, link_or_path: str) -> PostRow | None:
        """The post with this article URL or ``posts/``-relative path (``.md`` optional)."""
        path = link_or_path.removesuffix(".md")
        row = self.db.execute("SELECT * FROM posts WHERE path=? OR link=? ORDER BY path=? DESC LIMIT 1",
                              (path, link_or_path, path)).fetchone()
        return _post_row(row) if row else None

    # -- sources ---------------------------------------------------------------------

    def source_state(self, name: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM sources WHERE name=?", (name,)).fetchone()
        return dict(row) if row else None

    def sources(self) -> Iterator[dict[str, Any]]:
        for row in self.db.execute("SELECT * FROM sources ORDER BY name"):
            yield dict(row)

    def save_source_state(self, name: str, **values: Any) -> None:
        values["name"] = name
        cols = ", ".join(values)
        marks = ", ".join(f":{k}" for k in values)
        updates = ", ".join(f"{k}=excluded.{k}" for k in values if k != "name")
        self.db.execute(
            f"INSERT INTO sources ({cols}) VALUES ({marks}) ON CONFLICT(name) DO UPDATE SET {updates}",
            values,
        )

    # -- payload digests (revisits) --------------------------------------------------

    def payload(self, digest: str) -> dict[str, str] | None:
        row = self.db.execute("SELECT * FROM payloads WHERE digest=?", (digest,)).fetchone()
        return dict(row) if row else None

    def save_payload(self, digest: str, uri: str, date: str, filename: str, record_id: str) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO payloads VALUES (?, ?, ?, ?, ?)", (digest, uri, date, filename, record_id)
        )

    def payloads(self) -> Iterator[dict[str, str]]:
        for row in self.db.execute("SELECT * FROM payloads ORDER BY filename"):
            yield dict(row)

    def forget_payloads(self, filename: str, keep: Collection[str]) -> int:
        """Drop the digests of ``filename`` whose record is not among ``keep`` (cut by a repair)."""
        rows = self.db.execute("SELECT digest, record_id FROM payloads WHERE filename=?", (filename,)).fetchall()
        gone = [(row["digest"],) for row in rows if row["record_id"] not in keep]
        self.db.executemany("DELETE FROM payloads WHERE digest=?", gone)
        return len(gone)


def _member(row: sqlite3.Row) -> StoryMember:
    values = dict(row)
    values["categories"] = json.loads(values["categories"] or "[]")
    return StoryMember(**values)


def _post_row(row: sqlite3.Row) -> PostRow:
    values = dict(row)
    values["categories"] = json.loads(values["categories"] or "[]")
    return PostRow(**values)


def _archived_ns(archived: str) -> int:
    """A post's ``archived`` time (``%Y-%m-%dT%H:%M:%SZ``) in ns: a story member's ``seq``."""
    try:
        return int(datetime.strptime(archived, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()) * 10**9
    except ValueError:
        return 0
