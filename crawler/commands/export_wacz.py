"""``postarc export-wacz [--archive DIR] [--sign KEYFILE [--timestamp-url URL]] OUT.wacz``:
package the archive for ReplayWeb.page, signed per the WACZ signing recommendation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archive.signing import SigningKeyError, load_key
from archive.wacz import ExportError, export_wacz
from crawler.commands.keygen import inside
from crawler.exitcodes import EXIT_ERROR
from crawler.options import add_archive_option


class Command(ScrapyCommand):
    requires_project = True
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--archive DIR] [--title TEXT] [--sign KEYFILE [--timestamp-url URL]] OUT.wacz"

    def short_desc(self) -> str:
        return "Export the archive's WARC files as a WACZ (ReplayWeb.page, pywb), optionally signed"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)
        parser.add_argument("--title", default="", help="title stored in the WACZ")
        parser.add_argument("--sign", metavar="KEYFILE", help="sign with this key (postarc keygen)")
        parser.add_argument("--timestamp-url", metavar="URL", default="",
                            help="with --sign: RFC 3161 timestamp server to prove when it was signed")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1 or not args[0].endswith(".wacz"):
            raise UsageError("give one output file ending in .wacz")
        if opts.timestamp_url and not opts.sign:
            raise UsageError("--timestamp-url goes with --sign")
        assert self.settings is not None
        archive = Path(opts.archive or self.settings["POSTARC_ARCHIVE_DIR"])
        key = None
        try:
            if opts.sign:
                if inside(Path(opts.sign), archive):
                    raise SigningKeyError(f"{opts.sign}: inside the archive {archive}; keep keys elsewhere")
                key = load_key(opts.sign)
            result = export_wacz(archive, args[0], opts.title, key, opts.timestamp_url)
        except (ExportError, SigningKeyError) as exc:
            print(f"postarc: {exc}", file=sys.stderr)
            self.exitcode = EXIT_ERROR
            return
        signed = ", signed" + (" and timestamped" if result.timestamped else "") if result.signed else ""
        print(f"{result.path}: {result.warc_files} WARC file(s), {result.pages} post page(s){signed}")
