"""``postarc export-wacz [--archive DIR] OUT.wacz``: package the archive for ReplayWeb.page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archive.wacz import ExportError, export_wacz
from crawler.options import add_archive_option


class Command(ScrapyCommand):
    requires_project = True
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--archive DIR] [--title TEXT] OUT.wacz"

    def short_desc(self) -> str:
        return "Export the archive's WARC files as a WACZ (ReplayWeb.page, pywb)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)
        parser.add_argument("--title", default="", help="title stored in the WACZ")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1 or not args[0].endswith(".wacz"):
            raise UsageError("give one output file ending in .wacz")
        assert self.settings is not None
        archive = Path(opts.archive or self.settings["POSTARC_ARCHIVE_DIR"])
        try:
            result = export_wacz(archive, args[0], opts.title)
        except ExportError as exc:
            print(f"postarc: {exc}", file=sys.stderr)
            self.exitcode = 1
            return
        print(f"{result.path}: {result.warc_files} WARC file(s), {result.pages} post page(s)")
