"""``postarc replay``: browse, search and replay the archive in a web browser (no network)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError
from scrapy.utils.log import configure_logging

from crawler.exitcodes import EXIT_ERROR, EXIT_USAGE
from crawler.options import ArchiveOptionsMixin, add_archive_option


class Command(ArchiveOptionsMixin, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False  # a web server, not a crawl: no reactor, no Scrapy engine

    def syntax(self) -> str:
        return "[--archive DIR] [--host 127.0.0.1] [--port 8080]"

    def short_desc(self) -> str:
        return "Browse and search the archive, open captures as they were"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)
        parser.add_argument("--host", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1: this machine only)")
        parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        if not 0 <= opts.port <= 65535:
            raise UsageError("--port must be 0-65535")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        from archive.replay.server import serve  # imported here: other commands need no web stack

        assert self.settings is not None
        configure_logging(self.settings)  # requests and errors, at LOG_LEVEL, like every command
        archive = Path(self.settings["POSTARC_ARCHIVE_DIR"])
        if not (archive / "state.sqlite").is_file():
            print(f"postarc replay: {archive.resolve()} is not a postarc archive (no state.sqlite)", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        try:
            serve(archive, opts.host, opts.port, announce=lambda line: print(line, file=sys.stderr, flush=True))
        except OSError as exc:
            print(f"postarc replay: cannot listen on {opts.host}:{opts.port}: {exc}", file=sys.stderr)
            self.exitcode = EXIT_ERROR
