"""The posts as the replay lists them: catalogue rows, filters, search, counts.

Reads ``state.sqlite`` read-only (a crawl may be writing it) with the search index attached;
one connection per request, so the threaded server shares nothing.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from archive.catalogue import VersionRow
from archive.replay.search import MARK_END, MARK_START, Query, excerpt_html, marked_html

PER_PAGE = 50
MAX_PAGE = 100_000
MAX_FIELD = 200
DAYS_SHOWN = 120
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class BadQuery(ValueError):
    """A query parameter the listing cannot use (answered with 400)."""


def _day(value: str, name: str) -> str:
    if not value:
        return ""
    if not _DAY.match(value):
        raise BadQuery(f"{name} must be a date like 2024-03-31")
    try:
        date.fromisoformat(value)
    except ValueError as exc:
        raise BadQuery(f"{name}: {exc}") from exc
    return value


@dataclass(frozen=True)
class Filters:
    """What the index page shows: a search, a source, a category, a date range, a page."""

    q: str = ""
    source: str = ""
    category: str = ""
    since: str = ""  # YYYY-MM-DD, inclusive
    until: str = ""  # YYYY-MM-DD, inclusive
    page: int = 1

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> Filters:
        for name, value in params.items():
            if len(value) > MAX_FIELD:
                raise BadQuery(f"{name} is longer than {MAX_FIELD} characters")
        page_text = params.get("page", "1") or "1"
        if not page_text.isdigit() or not 1 <= int(page_text) <= MAX_PAGE:
            raise BadQuery(f"page must be a number from 1 to {MAX_PAGE}")
        return cls(q=params.get("q", "").strip(), source=params.get("source", ""),
                   category=params.get("category", ""), since=_day(params.get("from", ""), "from"),
                   until=_day(params.get("to", ""), "to"), page=int(page_text))

    def params(self, **changes: Any) -> dict[str, str]:
        """Query parameters for a link to this listing with ``changes`` (page resets to 1)."""
        f = replace(self, **{"page": 1, **changes})
        values = {"q": f.q, "source": f.source, "category": f.category, "from": f.since, "to": f.until,
                  "page": str(f.page) if f.page > 1 else ""}
        return {k: v for k, v in values.items() if v}


@dataclass
class PostSummary:
    path: str
    title: str
    source: str
    date: str | None
    categories: list[str]
    link: str | None
    title_html: str = ""
    snippet_html: str = ""


@dataclass
class Listing:
    posts: list[PostSummary]
    total: int
    filters: Filters
    by_source: list[tuple[str, int]] = field(default_factory=list)
    by_day: list[tuple[str, int]] = field(default_factory=list)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PER_PAGE))


class Library:
    """Catalogue queries for the replay UI."""

    def __init__(self, state_db: Path, search_db: Path) -> None:
        self.state_db = state_db
        self.search_db = search_db

    def connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.state_db.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
        db.row_factory = sqlite3.Row
        if self.search_db.is_file():
            db.execute("ATTACH DATABASE ? AS s", (self.search_db.resolve().as_uri() + "?mode=ro",))
        else:  # not built (a read-only archive): searches find nothing rather than fail
            db.execute("ATTACH DATABASE ':memory:' AS s")
            db.execute("CREATE TABLE s.files (id INTEGER PRIMARY KEY, path TEXT UNIQUE)")
            db.execute("CREATE VIRTUAL TABLE s.posts_fts USING fts5(title, body, tokenize='trigram')")
        return db

    # -- the listing ------------------------------------------------------------------

    @staticmethod
    def _search(db: sqlite3.Connection, query: Query) -> None:
        """Run the search once into ``temp.hits`` (path, rank); every query below joins it."""
        clauses, params = [], []
        if query.match:
            clauses.append("posts_fts MATCH ?")
            params.append(query.match)
        for term in query.short_terms:
            clauses.append("(instr(lower(posts_fts.title), lower(?)) OR instr(lower(posts_fts.body), lower(?)))")
            params += [term, term]
        rank = "posts_fts.rank" if query.match else "0"
        db.execute("CREATE TEMP TABLE hits (path TEXT PRIMARY KEY, rank REAL)")
        db.execute(f"INSERT OR IGNORE INTO hits SELECT sf.path, {rank} FROM s.posts_fts "
                   f"JOIN s.files sf ON sf.id = posts_fts.rowid WHERE {' AND '.join(clauses)}", params)

    @staticmethod
    def _where(f: Filters, skip: tuple[str, ...] = ()) -> tuple[str, str, list[Any]]:
        """(FROM clause, WHERE clause, parameters) for ``f``, leaving out the filters in ``skip``."""
        source = "posts p JOIN temp.hits h ON h.path = p.path" if Query.parse(f.q).terms else "posts p"
        clauses: list[str] = []
        params: list[Any] = []
        if f.source and "source" not in skip:
            clauses.append("p.source = ?")
            params.append(f.source)
        if f.category and "category" not in skip:
            clauses.append("EXISTS (SELECT 1 FROM json_each(p.categories) WHERE value = ?)")
            params.append(f.category)
        if f.since and "date" not in skip:
            clauses.append("p.date >= ?")
            params.append(f.since)
        if f.until and "date" not in skip:
            clauses.append("p.date < ?")
            params.append((date.fromisoformat(f.until) + timedelta(days=1)).isoformat())
        return source, (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def listing(self, f: Filters) -> Listing:
        query = Query.parse(f.q)
        db = self.connect()
        try:
            if query.terms:
                self._search(db, query)
            source, where, params = self._where(f)
            total = db.execute(f"SELECT count(*) FROM {source}{where}", params).fetchone()[0]
            order = "h.rank, p.date DESC, p.path" if query.match else "p.date DESC, p.path"
            rows = db.execute(f"SELECT p.path, p.title, p.source, p.date, p.categories, p.link FROM {source}{where} "
                              f"ORDER BY {order} LIMIT ? OFFSET ?",
                              [*params, PER_PAGE, (f.page - 1) * PER_PAGE]).fetchall()
            posts = [PostSummary(r["path"], r["title"], r["source"], r["date"], json.loads(r["categories"] or "[]"),
                                 r["link"]) for r in rows]
            if query.terms and posts:
                self._highlight(db, query, posts)
            listing = Listing(posts, total, f)
            listing.by_source = self._counts(db, f, "p.source", ("source",), "count(*) DESC, 1")
            listing.by_day = sorted(self._counts(db, f, "substr(p.date, 1, 10)", ("date",), "1 DESC",
                                                 DAYS_SHOWN, "p.date IS NOT NULL"))
            return listing
        finally:
            db.close()

    @staticmethod
    def _highlight(db: sqlite3.Connection, query: Query, posts: list[PostSummary]) -> None:
        """Marked titles and snippets for one page of results: FTS5's own for long terms."""
        marks = ", ".join("?" * len(posts))
        paths = [p.path for p in posts]
        if query.match:
            sql = (f"SELECT sf.path, highlight(posts_fts, 0, '{MARK_START}', '{MARK_END}'), "
                   f"snippet(posts_fts, 1, '{MARK_START}', '{MARK_END}', '…', 24) FROM s.posts_fts "
                   f"JOIN s.files sf ON sf.id = posts_fts.rowid WHERE posts_fts MATCH ? AND sf.path IN ({marks})")
            found = {path: (marked_html(title), marked_html(snip))
                     for path, title, snip in db.execute(sql, [query.match, *paths])}
        else:
            sql = (f"SELECT sf.path, posts_fts.title, posts_fts.body FROM s.posts_fts "
                   f"JOIN s.files sf ON sf.id = posts_fts.rowid WHERE sf.path IN ({marks})")
            found = {path: (excerpt_html(title, query.short_terms, width=200), excerpt_html(body, query.short_terms))
                     for path, title, body in db.execute(sql, paths)}
        for post in posts:
            post.title_html, post.snippet_html = found.get(post.path, ("", ""))

    def _counts(self, db: sqlite3.Connection, f: Filters, expr: str, skip: tuple[str, ...], order: str,
                limit: int = 1000, extra: str = "") -> list[tuple[str, int]]:
        source, where, params = self._where(f, skip)
        if extra:
            where = f"{where} AND {extra}" if where else f" WHERE {extra}"
        sql = f"SELECT {expr}, count(*) FROM {source}{where} GROUP BY 1 ORDER BY {order} LIMIT ?"
        return [(k, n) for k, n in db.execute(sql, [*params, limit]).fetchall()]

    # -- single posts and choices -----------------------------------------------------

    def post(self, path: str) -> dict[str, Any] | None:
        db = self.connect()
        try:
            row = db.execute("SELECT * FROM posts WHERE path = ?", (path,)).fetchone()
            if row is None:
                return None
            values = dict(row)
            values["categories"] = json.loads(values["categories"] or "[]")
            return values
        finally:
            db.close()

    def versions(self, source: str, guid: str) -> list[VersionRow]:
        """A post's versions, oldest first (none in a catalogue older than the versions table)."""
        db = self.connect()
        try:
            rows = db.execute("SELECT * FROM versions WHERE source=? AND guid=? ORDER BY captured",
                              (source, guid)).fetchall()
        except sqlite3.OperationalError:  # no such table
            return []
        finally:
            db.close()
        return [VersionRow(**dict(row)) for row in rows]

    def choices(self) -> tuple[list[str], list[str]]:
        """All sources and all categories, for the filter form."""
        db = self.connect()
        try:
            sources = [r[0] for r in db.execute("SELECT DISTINCT source FROM posts ORDER BY 1")]
            categories = [r[0] for r in db.execute(
                "SELECT DISTINCT j.value FROM posts, json_each(posts.categories) AS j ORDER BY 1")]
            return sources, categories
        finally:
            db.close()
