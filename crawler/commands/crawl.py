"""``postarc crawl --sources FILE``: one pass over the sources (cron-friendly).

Without ``--sources`` this is Scrapy's own ``crawl <spider>``, so Scrapyd and
``scrapy crawl feeds -a sources=FILE`` keep working.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError

from crawler.options import add_archive_option, add_output_options, apply_options
from crawler.runner import (EXIT_ERROR, EXIT_OK, EXIT_SOURCE_FAILED, EXIT_USAGE, archive_summary,
                            print_reports, run_feeds, source_reports)
from crawler.sources import SourcesError, load_sources


class Command(ScrapyCrawlCommand):
    def syntax(self) -> str:
        return "--sources FILE [--archive DIR] [--only NAME[,NAME]] | <spider>"

    def short_desc(self) -> str:
        return "Archive the feeds of a sources file (or run a spider by name)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--sources", metavar="FILE", help="sources file (YAML)")
        parser.add_argument("--only", metavar="NAMES", default="", help="only these sources (comma-separated)")
        add_archive_option(parser)
        add_output_options(parser)

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        apply_options(self.settings, opts)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not opts.sources:
            if not args:
                raise UsageError("give --sources FILE (or the name of a spider)")
            super().run(args, opts)
            return
        try:
            config = load_sources(opts.sources)
        except SourcesError as exc:
            print(f"postarc: bad sources file\n{exc}", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        unknown = {n for n in opts.only.split(",") if n} - {s.name for s in config.sources}
        if unknown:
            raise UsageError(f"--only: no source named {', '.join(sorted(unknown))}")
        assert self.crawler_process is not None and self.settings is not None
        crawler = run_feeds(self.crawler_process, Path(opts.sources), opts.only)
        if self.crawler_process.bootstrap_failed:
            self.exitcode = EXIT_ERROR
            return
        reports = source_reports(crawler.stats.get_stats(), config, opts.only)
        print_reports(reports)
        summary = archive_summary(Path(self.settings["POSTARC_ARCHIVE_DIR"]))
        print(f"archive: {summary['archive']}  posts: {summary['posts']}  "
              f"WARC files: {summary['warc_files']} ({summary['warc_bytes']} bytes)", file=sys.stderr)
        failed = [r for r in reports if not r.ok]
        for r in failed:
            print(f"postarc: source {r.name} failed: {r.status}", file=sys.stderr)
        self.exitcode = EXIT_SOURCE_FAILED if failed else EXIT_OK
