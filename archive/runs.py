"""Crawl runs, recorded in ``state.sqlite``: what ran when, with which arguments and settings.

A rebuild from the WARC files (``postarc reextract``) replays each run that wrote posts with
the spider, the arguments (the sources file's text, not its path, which may have changed) and
the output settings of that run, over the captures made between its start and its end.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from archive.catalogue import BUSY_TIMEOUT, use_wal

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # the catalogue's
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id        INTEGER PRIMARY KEY,
    spider    TEXT NOT NULL,
    started   TEXT NOT NULL,            -- UTC, second floored
    finished  TEXT,                     -- UTC, second rounded up; NULL while running (or killed)
    outcome   TEXT,                     -- Scrapy's close reason
    arguments TEXT NOT NULL DEFAULT '{}',
    sources   TEXT,                     -- the sources file as it was, for the feeds spider
    settings  TEXT NOT NULL DEFAULT '{}',
    warc_files TEXT NOT NULL DEFAULT '[]' -- the WARC files the run wrote (names in warc/)
);
"""


@dataclass(frozen=True)
class Run:
    id: int
    spider: str
    started: str
    finished: str | None
    outcome: str | None
    arguments: dict[str, Any]
    sources: str | None
    settings: dict[str, Any]
    warc_files: list[str]


def floor_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(TIME_FORMAT)


def ceil_time(moment: datetime) -> str:
    moment = moment.astimezone(timezone.utc)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.strftime(TIME_FORMAT)


def _connect(state_db: Path) -> sqlite3.Connection:
    db = sqlite3.connect(state_db, timeout=BUSY_TIMEOUT, isolation_level=None)
    use_wal(db)
    db.executescript(SCHEMA)
    return db


def start_run(state_db: Path, spider: str, arguments: dict[str, Any], sources: str | None,
              settings: dict[str, Any], now: datetime | None = None) -> int:
    db = _connect(state_db)
    try:
        cur = db.execute(
            "INSERT INTO runs (spider, started, arguments, sources, settings) VALUES (?, ?, ?, ?, ?)",
            (spider, floor_time(now or datetime.now(timezone.utc)), json.dumps(arguments, ensure_ascii=False),
             sources, json.dumps(settings, ensure_ascii=False, default=str)))
        return int(cur.lastrowid or 0)
    finally:
        db.close()


def finish_run(state_db: Path, run_id: int, outcome: str, warc_files: list[str],
               now: datetime | None = None) -> None:
    db = _connect(state_db)
    try:
        db.execute("UPDATE runs SET finished=?, outcome=?, warc_files=? WHERE id=?",
                   (ceil_time(now or datetime.now(timezone.utc)), outcome, json.dumps(warc_files), run_id))
    finally:
        db.close()


def recorded_runs(state_db: Path) -> list[Run]:
    """Every recorded run, oldest first; none for an archive made before runs were recorded."""
    if not state_db.is_file():
        return []
    db = _connect(state_db)
    try:
        rows = db.execute("SELECT id, spider, started, finished, outcome, arguments, sources, settings, warc_files "
                          "FROM runs ORDER BY started, id").fetchall()
    finally:
        db.close()
    return [Run(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), r[6], json.loads(r[7] or "{}"),
                json.loads(r[8] or "[]")) for r in rows]
