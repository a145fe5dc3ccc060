"""``postarc archive URL… [--archive DIR]``: archive post pages and feeds now (also ``scrapy archive``).

stdout gets the path of every Markdown file written, one a line (or with ``--json`` one object per
URL); stderr gets progress, a summary and each failure with its URL and reason. The exit code
is 0 only when every URL was archived.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scrapy import signals
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.settings import SETTINGS_PRIORITIES

from crawler.exitcodes import EXIT_BUSY, EXIT_ERROR, EXIT_OK, EXIT_PARTIAL
from crawler.items import Post
from crawler.lock import ArchiveBusy, ArchiveLock
from crawler.options import ArchiveOptionsMixin, add_archive_option, add_output_options
from crawler.spiders.url import UrlSpider, url_resolved

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from twisted.python.failure import Failure

_HTTP_URL = re.compile(r"^https?://[^\s/?#]+\S*$", re.IGNORECASE)


def read_urls(args: list[str], stdin: TextIO) -> list[str]:
    """The URLs asked for, each once, in order; ``-`` reads more from stdin (``#`` lines are comments)."""
    urls: list[str] = []
    for arg in args:
        if arg == "-":
            urls += [s for line in stdin if (s := line.strip()) and not s.startswith("#")]
        else:
            urls.append(arg.strip())
    return list(dict.fromkeys(u for u in urls if u))


@dataclass
class UrlReport:
    """What became of one URL."""

    url: str
    kind: str | None = None  # "page" or "feed"
    reason: str | None = None  # why it failed
    warc: str | None = None  # WARC file holding the URL's response
    resolved: bool = False
    expected: int = 0  # posts the URL gave to the pipelines
    written: list[str] = field(default_factory=list)  # Markdown paths
    errors: list[str] = field(default_factory=list)  # posts lost to a pipeline error

    @property
    def ok(self) -> bool:
        return self.resolved and self.reason is None and not self.errors

    @property
    def unchanged(self) -> int:
        """Posts not rewritten because the archive already holds them as they are."""
        return max(self.expected - len(self.written) - len(self.errors), 0)

    @property
    def error(self) -> str | None:
        if not self.resolved:
            return self.reason or "not fetched (the crawl ended first)"
        return self.reason or ("; ".join(self.errors) if self.errors else None)

    def as_json(self) -> dict[str, Any]:
        return {"url": self.url, "status": "archived" if self.ok else "failed", "kind": self.kind,
                "posts": self.written, "unchanged": self.unchanged, "warc": self.warc, "error": self.error}


class ArchiveReport:
    """Follows the crawl through its signals: each URL's outcome, the Markdown files its posts became.

    Paths go to ``out`` as soon as they are written (pipe-friendly); progress goes to ``err``.
    """

    def __init__(self, crawler: Crawler, reports: dict[str, UrlReport], posts_dir: Path,
                 out: TextIO, err: TextIO, print_paths: bool) -> None:
        self.reports = reports
        self.posts_dir = posts_dir
        self.out, self.err = out, err
        self.print_paths = print_paths
        self.tty = err.isatty()
        self.asked = sum(1 for r in reports.values() if not r.reason)
        self.done = 0
        self.last = ""  # the latest URL's line, kept on a terminal's status line
        crawler.signals.connect(self.url_resolved, signal=url_resolved)
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self.item_error, signal=signals.item_error)
        crawler.signals.connect(self.clear_line, signal=signals.spider_closed)

    def url_resolved(self, url: str, kind: str | None, reason: str | None, warc: str | None, posts: int) -> None:
        report = self.reports[url]
        report.resolved, report.kind, report.reason, report.warc, report.expected = True, kind, reason, warc, posts
        self.done += 1
        what = f"failed: {reason}" if reason else f"{kind}, {posts} post{'s' * (posts != 1)}"
        self.progress(f"[{self.done}/{self.asked}] {url}: {what}")

    def item_scraped(self, item: Any) -> None:
        if isinstance(item, Post) and item.requested_url in self.reports:
            path = str(self.posts_dir / item.markdown_file)
            written = self.reports[item.requested_url].written
            if path in written:  # a guard: the dedup pipeline already lets one post through per run
                return
            written.append(path)
            if self.print_paths:
                self.clear_line()
                print(path, file=self.out, flush=True)
            if self.tty:
                self.progress(self.last)

    def item_error(self, item: Any, failure: Failure) -> None:
        if isinstance(item, Post) and item.requested_url in self.reports:
            self.reports[item.requested_url].errors.append(f"{item.title or item.guid}: {failure.getErrorMessage()}")

    def progress(self, line: str) -> None:
        """One line per URL; on a terminal, a status line redrawn in place."""
        self.last = line
        if self.tty:
            written = sum(len(r.written) for r in self.reports.values())
            status = f"archive: {self.done}/{self.asked} URLs, {written} posts written  {line}"
            self.err.write("\r\033[K" + status[: shutil.get_terminal_size().columns - 1])
        else:
            self.err.write(f"archive: {line}\n")
        self.err.flush()

    def clear_line(self) -> None:
        if self.tty:
            self.err.write("\r\033[K")
            self.err.flush()


class Command(ArchiveOptionsMixin, ScrapyCommand):
    requires_project = True

    def syntax(self) -> str:
        return "URL [URL …] [--archive DIR]   (URL '-' reads URLs from stdin)"

    def short_desc(self) -> str:
        return "Archive post pages and feeds now; print the Markdown files written"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)
        group = parser.add_argument_group("What to archive")
        group.add_argument("--category", action="append", default=[], metavar="NAME",
                           help="category of the posts (repeatable)")
        group.add_argument("--limit", type=int, metavar="N", help="at most N entries of each feed")
        group.add_argument("--follow-links", action="store_true", help="also fetch feed entries' article pages")
        group.add_argument("--timezone", default="UTC", metavar="ZONE",
                           help="zone of dates written without one (default UTC)")
        group.add_argument("--json", action="store_true", help="print one JSON object per URL instead of paths")
        add_output_options(parser)

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        # Warnings and errors only, unless -L/--loglevel says otherwise: stdout and stderr carry
        # the command's own report.
        if self.settings.getpriority("LOG_LEVEL") < SETTINGS_PRIORITIES["cmdline"]:
            self.settings.set("LOG_LEVEL", "WARNING", priority="cmdline")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.crawler_process is not None and self.settings is not None
        urls = read_urls(args, sys.stdin)
        if not urls:
            raise UsageError("give at least one URL (or - to read them from stdin)")
        if opts.limit is not None and opts.limit < 1:
            raise UsageError("--limit must be at least 1", print_help=False)
        try:
            ZoneInfo(opts.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise UsageError(f"--timezone: unknown time zone {opts.timezone!r}", print_help=False) from None
        reports = {u: UrlReport(u) for u in urls}
        for report in reports.values():
            if not _HTTP_URL.match(report.url):
                report.resolved, report.reason = True, "not an http(s) URL"
        to_fetch = [r.url for r in reports.values() if not r.reason]
        archive = Path(self.settings["POSTARC_ARCHIVE_DIR"])
        if to_fetch:
            lock = ArchiveLock(archive)
            try:
                lock.acquire()
            except ArchiveBusy as exc:
                print(f"postarc: {exc}; nothing done", file=sys.stderr)
                self.exitcode = EXIT_BUSY
                return
            try:
                crawler = self.crawler_process.create_crawler(UrlSpider)
                # Kept in a variable: Scrapy's signal dispatcher holds handlers by weak reference.
                report = ArchiveReport(crawler, reports, archive / "posts", sys.stdout, sys.stderr, not opts.json)
                self.crawler_process.crawl(crawler, urls=to_fetch, categories=opts.category, limit=opts.limit,
                                           follow_links=opts.follow_links, timezone=opts.timezone)
                self.crawler_process.start()
            finally:
                lock.release()
            report.clear_line()
            if self.crawler_process.bootstrap_failed:
                self.exitcode = EXIT_ERROR
                return
        self.exitcode = self.summarise(list(reports.values()), opts.json)

    @staticmethod
    def summarise(reports: list[UrlReport], as_json: bool) -> int:
        if as_json:
            for report in reports:
                print(json.dumps(report.as_json(), ensure_ascii=False))
        failed = [r for r in reports if not r.ok]
        written = sum(len(r.written) for r in reports)
        unchanged = sum(r.unchanged for r in reports)
        print(f"archive: {len(reports) - len(failed)} of {len(reports)} URLs archived, {written} posts written, "
              f"{unchanged} unchanged", file=sys.stderr)
        for r in failed:
            print(f"postarc: failed: {r.url}: {r.error}", file=sys.stderr)
        return EXIT_PARTIAL if failed else EXIT_OK
