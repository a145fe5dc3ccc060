"""What the ``crawl``, ``schedule`` and ``demo`` commands share: which sources are due, run the
feeds spider, report per source, where the logs go."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from archive.catalogue import Catalogue
from archive.policy import parse_time
from crawler.ledger import (BYTES, ENCLOSURES_FAILED, ENTRIES, IMAGES_FAILED, MERGED, NEW, PAGE_FAILED, RETRY_NEXT,
                            UNCHANGED, UPDATED, SourceLedger)
from crawler.progress import human_bytes
from crawler.protocol import ELSEWHERE, NOT_MODIFIED, OK, STARTED
from crawler.shared import is_shared
from crawler.sources import Source, SourcesFile
from crawler.spiders.feeds import FeedSpider
from crawler.state import open_state

if TYPE_CHECKING:
    from scrapy.crawler import Crawler, CrawlerProcessBase
    from scrapy.settings import BaseSettings

#: Source statuses that count as "the source worked".
OK_STATUSES = {OK, NOT_MODIFIED, ELSEWHERE}


@dataclass
class SourceReport:
    name: str
    status: str
    entries: int
    new: int
    updated: int
    unchanged: int
    failed: int
    bytes: int = 0
    retry_next: int = 0  # posts whose page or image failed for now: the next run fetches them again
    merged: int = 0  # entries merged into another feed's post: one story (dedup: across)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES


def last_runs(archive_dir: Path, config: SourcesFile,
              settings: BaseSettings | None = None) -> dict[str, datetime | None]:
    """When each source last ran to the end (``last_run`` in the catalogue, or in Redis when
    ``settings`` make the crawl a shared one)."""
    shared = settings is not None and is_shared(settings)
    if not shared and not (archive_dir / "state.sqlite").exists():
        return {s.name: None for s in config.sources}
    catalogue = open_state(settings) if shared and settings is not None else Catalogue.of_archive(archive_dir)
    try:
        return {s.name: parse_time((catalogue.source_state(s.name) or {}).get("last_run")) for s in config.sources}
    finally:
        catalogue.close()


def due_sources(config: SourcesFile, runs: dict[str, datetime | None], now: datetime | None = None) -> list[Source]:
    """Enabled sources whose ``schedule``/``every`` says run now (those with neither always do)."""
    now = now or datetime.now(timezone.utc)
    return [s for s in config.sources if s.enabled and s.is_due(runs.get(s.name), now)]


def run_feeds(process: CrawlerProcessBase, sources_path: Path, only: str = "") -> Crawler:
    """Crawl the sources with the feeds spider in ``process``; returns the finished crawler."""
    crawler = process.create_crawler(FeedSpider)
    process.crawl(crawler, sources=str(sources_path), only=only)
    process.start()
    return crawler


def log_file(archive_dir: Path, keep: int) -> Path:
    """A new log file for this run in ``DIR/logs/``; with it, the newest ``keep`` are kept (0: all)."""
    logs = archive_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if keep > 0:
        existing = sorted(logs.glob("crawl-*.log"))  # names start with the time: oldest first
        for old in existing[: max(0, len(existing) - keep + 1)]:
            old.unlink(missing_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return logs / f"crawl-{stamp}-{os.getpid()}.log"


def source_reports(ledger: SourceLedger, config: SourcesFile, only: str = "") -> list[SourceReport]:
    """One report per enabled source (of ``only``, if given), from the crawl's ledger."""
    names = {n for n in only.split(",") if n}
    reports = []
    for source in config.sources:
        if not source.enabled or (names and source.name not in names):
            continue
        name = source.name
        status = ledger.status(name) or "not run"
        if status == STARTED:
            status = "failed: crawl ended before the feed was fetched"
        reports.append(SourceReport(
            name=name,
            status=status,
            entries=ledger.count(name, ENTRIES),
            new=ledger.count(name, NEW),
            updated=ledger.count(name, UPDATED),
            unchanged=ledger.count(name, UNCHANGED),
            failed=sum(ledger.count(name, what) for what in (PAGE_FAILED, IMAGES_FAILED, ENCLOSURES_FAILED)),
            bytes=ledger.count(name, BYTES),
            retry_next=ledger.count(name, RETRY_NEXT),
            merged=ledger.count(name, MERGED),
        ))
    return reports


def print_reports(reports: list[SourceReport], out: TextIO = sys.stderr) -> None:
    width = max([len(r.name) for r in reports] + [6])
    out.write(f"{'source':<{width}}  {'new':>5} {'upd':>5} {'same':>5} {'merged':>6} {'fail':>5} {'bytes':>9}  status\n")
    for r in reports:
        out.write(f"{r.name:<{width}}  {r.new:>5} {r.updated:>5} {r.unchanged:>5} {r.merged:>6} {r.failed:>5} "
                  f"{human_bytes(r.bytes):>9}  {r.status}\n")
    for r in reports:
        if r.retry_next:
            out.write(f"postarc: {r.retry_next} post(s) of source {r.name} lack a page or an image that failed "
                      f"for now; the next run fetches them again\n")


def archive_summary(archive_dir: Path) -> dict[str, Any]:
    """Counts of what is on disk: posts, WARC files and their bytes."""
    warcs = sorted((archive_dir / "warc").glob("*.warc.gz"))
    return {
        "archive": str(archive_dir.resolve()),
        # os.walk, not Path.rglob: half the CPU, at the end of every run.
        "posts": sum(name.endswith(".md") for _, _, names in os.walk(archive_dir / "posts") for name in names),
        "warc_files": len(warcs),
        "warc_bytes": sum(p.stat().st_size for p in warcs),
    }
