"""Full-text search over the posts: SQLite FTS5 with the trigram tokenizer, in its own file.

Trigrams need no word segmentation, so Chinese (and any other script) is searchable as typed.
The index lives in ``DIR/indexes/search.sqlite``, apart from the catalogue: it is derived data,
rebuilt from ``posts/`` at will (delete the file), and a replay server may write it while a
crawl writes ``state.sqlite``. It follows ``posts/`` incrementally: a file is (re)indexed when
its size or modification time changed, dropped when it is gone.

FTS5 matches trigrams, so a term shorter than three characters cannot use the index; such terms
are matched with ``instr`` over the indexed text instead (a scan, fine at archive sizes; SQLite
3.40's trigram ``LIKE`` misses two-character CJK patterns).
"""

from __future__ import annotations

import html
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from archive.catalogue import use_wal
from archive.frontmatter import post_text

SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id       INTEGER PRIMARY KEY,
    path     TEXT NOT NULL UNIQUE,   -- posts/-relative, without .md (the catalogue's path)
    mtime_ns INTEGER NOT NULL,
    size     INTEGER NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS posts_fts USING fts5(title, body, tokenize='trigram');
"""
BATCH = 500
MIN_TRIGRAM = 3
MAX_TERMS = 8
MARK_START, MARK_END = "\x02", "\x03"
TEMP_PREFIX = ".postarc-tmp-"  # archive.markdown's temp files, never indexed


def search_db(archive_dir: str | os.PathLike[str]) -> Path:
    return Path(archive_dir) / "indexes" / "search.sqlite"


def _post_files(posts_dir: Path) -> Iterator[tuple[str, os.stat_result]]:
    """(path without .md, stat) of every post file under ``posts_dir``; symlinks are not followed."""
    stack = [posts_dir]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif (entry.name.endswith(".md") and not entry.name.startswith(TEMP_PREFIX)
                  and entry.is_file(follow_symlinks=False)):
                rel = Path(entry.path).relative_to(posts_dir).as_posix()
                yield rel[:-3], entry.stat(follow_symlinks=False)


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    use_wal(db, timeout=30)
    db.executescript(SCHEMA)
    return db


@dataclass
class SyncProgress:
    running: bool = False
    done: int = 0
    todo: int = 0
    finished_at: float = 0.0  # time.monotonic() of the last completed sync
    error: str = ""


class SearchIndex:
    """Keeps ``search.sqlite`` in step with ``posts/``; ``sync`` runs in a background thread."""

    def __init__(self, archive_dir: str | os.PathLike[str]) -> None:
        self.posts_dir = Path(archive_dir) / "posts"
        self.path = search_db(archive_dir)
        self.progress = SyncProgress()
        self._lock = threading.Lock()
        try:
            connect(self.path).close()  # the schema exists before any query attaches the file
        except (OSError, sqlite3.Error) as exc:  # a read-only archive: no search index
            self.progress.error = f"cannot write {self.path}: {exc}"

    def sync(self) -> SyncProgress:
        """Index new and changed posts, forget removed ones; returns the progress record."""
        if not self._lock.acquire(blocking=False):
            return self.progress  # another sync is on it
        try:
            self.progress.running, self.progress.done, self.progress.error = True, 0, ""
            db = connect(self.path)
            try:
                self._sync(db)
            finally:
                db.close()
        except (OSError, sqlite3.Error) as exc:
            self.progress.error = str(exc)
        finally:
            self.progress.running = False
            self.progress.finished_at = time.monotonic()
            self._lock.release()
        return self.progress

    def sync_in_background(self, max_age: float = 0.0) -> None:
        """Start a sync unless one is running or the last one finished under ``max_age`` s ago."""
        p = self.progress
        if p.running or (p.finished_at and time.monotonic() - p.finished_at < max_age):
            return
        p.running = True  # from now on, so that a search made before the thread runs says so
        threading.Thread(target=self.sync, name="postarc-search-sync", daemon=True).start()

    def _sync(self, db: sqlite3.Connection) -> None:
        known = {path: (fid, mtime, size) for fid, path, mtime, size in db.execute("SELECT * FROM files")}
        on_disk = dict(_post_files(self.posts_dir)) if self.posts_dir.is_dir() else {}
        changed = [p for p, st in on_disk.items()
                   if known.get(p, (None, None, None))[1:] != (st.st_mtime_ns, st.st_size)]
        gone = [known[p][0] for p in known.keys() - on_disk.keys()]
        self.progress.todo = len(changed) + len(gone)
        db.execute("BEGIN")
        for fid in gone:
            db.execute("DELETE FROM posts_fts WHERE rowid=?", (fid,))
            db.execute("DELETE FROM files WHERE id=?", (fid,))
        for n, path in enumerate(changed, 1):
            st = on_disk[path]
            try:
                text = (self.posts_dir / f"{path}.md").read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            title, body = post_text(text)
            fid = db.execute(
                "INSERT INTO files (path, mtime_ns, size) VALUES (?, ?, ?) ON CONFLICT(path) DO UPDATE "
                "SET mtime_ns=excluded.mtime_ns, size=excluded.size RETURNING id",
                (path, st.st_mtime_ns, st.st_size)).fetchone()[0]
            db.execute("DELETE FROM posts_fts WHERE rowid=?", (fid,))
            db.execute("INSERT INTO posts_fts (rowid, title, body) VALUES (?, ?, ?)", (fid, title, body))
            if n % BATCH == 0:  # let searches see the progress
                db.execute("COMMIT")
                db.execute("BEGIN")
            self.progress.done = n + len(gone)
        db.execute("COMMIT")


@dataclass(frozen=True)
class Query:
    """A search as SQL: an FTS5 MATCH expression for long terms, ``instr`` tests for short ones."""

    terms: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Query:
        terms = [t for t in text.split() if t][:MAX_TERMS]
        return cls(tuple(dict.fromkeys(terms)))

    @property
    def match(self) -> str:
        """Every long term as a quoted phrase (so no FTS5 syntax can be injected); AND-ed."""
        return " ".join('"' + t.replace('"', '""') + '"' for t in self.terms if len(t) >= MIN_TRIGRAM)

    @property
    def short_terms(self) -> list[str]:
        return [t for t in self.terms if len(t) < MIN_TRIGRAM]


def marked_html(text: str) -> str:
    """FTS5 ``snippet``/``highlight`` output (with our marker characters) as safe HTML."""
    return html.escape(text).replace(MARK_START, "<mark>").replace(MARK_END, "</mark>")


def excerpt_html(text: str, terms: list[str], width: int = 60) -> str:
    """A snippet around the first term found in ``text``, every term marked (for short terms)."""
    lowered = text.lower()
    hits = [i for i in (lowered.find(t.lower()) for t in terms) if i >= 0]
    start = max(0, min(hits) - width // 2) if hits else 0
    piece = text[start:start + width * 2]
    out, pos = [], 0
    if terms:
        pattern = re.compile("|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)), re.IGNORECASE)
        for m in pattern.finditer(piece):
            out += [html.escape(piece[pos:m.start()]), "<mark>", html.escape(m.group(0)), "</mark>"]
            pos = m.end()
    out.append(html.escape(piece[pos:]))
    return ("…" if start else "") + "".join(out) + ("…" if start + width * 2 < len(text) else "")
