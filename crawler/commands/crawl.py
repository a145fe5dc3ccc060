"""``postarc crawl --sources FILE``: one pass over the sources that are due (cron-friendly).

Without ``--sources`` this is Scrapy's own ``crawl <spider>``, so Scrapyd and
``scrapy crawl feeds -a sources=FILE`` keep working.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from crawler.credentials import SecretsError, resolve
from crawler.exitcodes import EXIT_BUSY, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from crawler.ledger import ledger_of
from crawler.lock import ArchiveBusy, ArchiveLock
from crawler.options import ArchiveOptionsMixin, add_archive_option, add_output_options, add_secrets_option
from crawler.processes import HOLDER_SETTING, REPORT_SETTING, processes_wanted, run_children, split_by_host, write_report
from crawler.runlog import log_to_archive, unset_by_user, warnings_to_stderr
from crawler.runner import (SourceReport, archive_summary, due_sources, last_runs, print_reports, run_feeds,
                            source_reports)
from crawler.shared import is_shared, redis_problem
from crawler.sources import Source, SourcesError, SourcesFile, load_sources, refuse_sources


class Command(ArchiveOptionsMixin, ScrapyCrawlCommand):
    config: SourcesFile | None = None
    sources_error: SourcesError | SecretsError | None = None

    def syntax(self) -> str:
        return "--sources FILE [--archive DIR] [--all | --only NAME[,NAME]] [--redis URL] | <spider>"

    def short_desc(self) -> str:
        return "Archive the due feeds of a sources file (or run a spider by name)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--sources", metavar="FILE", help="sources file (YAML)")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--all", action="store_true", help="every enabled source, due or not")
        which.add_argument("--only", metavar="NAMES", default="",
                           help="these sources (comma-separated), due or not")
        parser.add_argument("--processes", metavar="N", type=int,
                            help="split the due sources, by feed host, over N crawl processes (default: one per "
                                 "two cores, at most POSTARC_PROCESSES_MAX = 8; 1: crawl in this process)")
        parser.add_argument("--redis", metavar="URL",
                            help="be one worker of a crawl shared through Redis (redis://HOST:PORT/DB); "
                                 "same as -s REDIS_URL=URL")
        add_archive_option(parser)
        add_secrets_option(parser)
        add_output_options(parser)

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if opts.redis:
            self.settings.set("REDIS_URL", opts.redis, priority="cmdline")
        if opts.processes is not None:
            if opts.processes < 1:
                raise UsageError("--processes must be 1 or more", print_help=False)
            self.settings.set("POSTARC_PROCESSES", opts.processes, priority="cmdline")
        if not opts.sources:
            return
        try:
            self.config = load_sources(opts.sources)
            resolve(self.config, self.settings.get("POSTARC_SECRETS_FILE") or None)  # before any request
        except (SourcesError, SecretsError) as exc:
            self.sources_error = exc  # reported by run(), before anything is written
            if unset_by_user(self.settings, "LOG_LEVEL"):
                self.settings.set("LOG_LEVEL", "WARNING", priority="cmdline")  # the error alone, not Scrapy's banner
            return
        log_to_archive(self.settings)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not opts.sources:
            if not args:
                raise UsageError("give --sources FILE (or the name of a spider)")
            super().run(args, opts)
            return
        if isinstance(self.sources_error, SecretsError):
            print(f"postarc: {self.sources_error}\nnothing done", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        if self.sources_error is not None:
            self.exitcode = refuse_sources(self.sources_error)
            return
        assert self.config is not None and self.settings is not None
        archive = Path(self.settings["POSTARC_ARCHIVE_DIR"])
        shared = is_shared(self.settings)
        problem = redis_problem(self.settings) if shared else None
        if problem:
            print(f"postarc: {problem}; nothing done", file=sys.stderr)
            self.exitcode = EXIT_ERROR
            return
        # Workers of a shared crawl write one archive together; a lone crawl still excludes them.
        # A child of `crawl --processes` crawls under its parent's lock.
        child = self.settings.get(HOLDER_SETTING) == str(os.getppid())
        lock = ArchiveLock(archive, shared=shared)
        try:
            if not child:
                lock.acquire()
        except ArchiveBusy as exc:
            print(f"postarc: {exc}; nothing done", file=sys.stderr)
            self.exitcode = EXIT_BUSY
            return
        try:
            selected = self.select(self.config, opts, archive)
            shares = [] if child or shared else split_by_host(self.config, selected, processes_wanted(self.settings))
            if len(shares) > 1:
                self.crawl_in_processes(shares, opts, archive)
            else:
                self.crawl(selected, opts, archive)
        finally:
            lock.release()

    def select(self, config: SourcesFile, opts: argparse.Namespace, archive: Path) -> list[Source]:
        by_name = {s.name: s for s in config.sources}
        names = [n for n in opts.only.split(",") if n]
        if names:
            unknown = sorted(set(names) - set(by_name))
            if unknown:
                raise UsageError(f"--only: no source named {', '.join(unknown)}", print_help=False)
            disabled = sorted(n for n in names if not by_name[n].enabled)
            if disabled:
                raise UsageError(f"--only: source {', '.join(disabled)} is disabled (enabled: false)",
                                 print_help=False)
            return [by_name[n] for n in dict.fromkeys(names)]
        if opts.all:
            return [s for s in config.sources if s.enabled]
        return due_sources(config, last_runs(archive, config, self.settings))

    def crawl(self, selected: list[Source], opts: argparse.Namespace, archive: Path) -> None:
        assert self.crawler_process is not None and self.settings is not None and self.config is not None
        if not selected:
            print("postarc: no source is due (--all runs every source now)", file=sys.stderr)
            self.exitcode = EXIT_OK
            return
        log_path = self.settings.get("LOG_FILE")
        warnings_to_stderr(self.settings)
        only = ",".join(s.name for s in selected)
        crawler = run_feeds(self.crawler_process, Path(opts.sources), only)
        if self.crawler_process.bootstrap_failed:
            self.exitcode = EXIT_ERROR
            return
        stats = crawler.stats.get_stats()
        reports = source_reports(ledger_of(crawler), self.config, only)
        report_file = self.settings.get(REPORT_SETTING)
        if report_file:  # a child of `crawl --processes`: its parent prints one table for all
            write_report(Path(report_file), reports, stats.get("finish_reason", ""), log_path)
            return
        self.conclude(reports, [stats.get("finish_reason")] if stats.get("finish_reason") != "finished" else [],
                      archive, [log_path] if log_path else [])

    def crawl_in_processes(self, shares: list[list[Source]], opts: argparse.Namespace, archive: Path) -> None:
        assert self.settings is not None and self.config is not None
        progress = sys.stderr if self.settings.getbool("POSTARC_PROGRESS") else None
        reports, logs, unfinished = run_children(Path(opts.sources), archive, shares, self.settings, progress)
        position = {s.name: i for i, s in enumerate(self.config.sources)}
        self.conclude(sorted(reports, key=lambda r: position[r.name]), unfinished, archive, logs)

    def conclude(self, reports: list[SourceReport], unfinished: list[str], archive: Path, logs: list[str]) -> None:
        """The table, the archive's summary line, and the exit code."""
        print_reports(reports)
        summary = archive_summary(archive)
        print(f"archive: {summary['archive']}  posts: {summary['posts']}  "
              f"WARC files: {summary['warc_files']} ({summary['warc_bytes']} bytes)"
              + (f"  log: {' '.join(logs)}" if logs else ""), file=sys.stderr)
        if unfinished:
            print(f"postarc: crawl interrupted ({', '.join(dict.fromkeys(unfinished))}); the next run resumes it",
                  file=sys.stderr)
            self.exitcode = EXIT_INTERRUPTED
            return
        failed = [r for r in reports if not r.ok]
        for r in failed:
            print(f"postarc: source {r.name} failed: {r.status}", file=sys.stderr)
        self.exitcode = EXIT_PARTIAL if failed else EXIT_OK
