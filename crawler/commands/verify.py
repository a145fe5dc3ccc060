"""``postarc verify [--archive DIR]``: check that WARC files, index and catalogue agree."""

from __future__ import annotations

import argparse
from pathlib import Path

from scrapy.commands import ScrapyCommand

from archive.verify import verify_archive
from crawler.options import add_archive_option


class Command(ScrapyCommand):
    requires_project = True
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--archive DIR]"

    def short_desc(self) -> str:
        return "Check the archive's WARC files, index and catalogue; non-zero exit on any fault"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        archive = Path(opts.archive or self.settings["POSTARC_ARCHIVE_DIR"])
        report = verify_archive(archive)
        for problem in report.problems:
            print(problem)
        print(f"{archive}: {report.summary()}")
        self.exitcode = 0 if report.ok else 1
