"""``postarc verify [--archive DIR]``: check that WARC files, index and catalogue agree;
``postarc verify --wacz FILE [--trust CAS.pem]``: check a WACZ's hashes, signature and timestamp."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography import x509
from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archive.verify import verify_archive
from archive.wacz_verify import verify_wacz
from crawler.exitcodes import EXIT_ERROR, EXIT_OK
from crawler.options import add_archive_option


def read_trust(path: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(Path(path).read_bytes())
    except OSError as exc:
        raise UsageError(f"--trust {path}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise UsageError(f"--trust {path}: not a PEM bundle of certificates") from None


class Command(ScrapyCommand):
    requires_project = True
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "[--archive DIR] | --wacz FILE [--trust CAS.pem]"

    def short_desc(self) -> str:
        return "Check the archive (or a WACZ: hashes, signature, timestamp); non-zero exit on any fault"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)
        parser.add_argument("--wacz", metavar="FILE", help="check this WACZ instead of the archive")
        parser.add_argument("--trust", metavar="CAS.pem",
                            help="with --wacz: CA certificates a timestamp server or signing domain must chain to")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        if opts.wacz:
            self._run_wacz(opts.wacz, read_trust(opts.trust) if opts.trust else None)
            return
        if opts.trust:
            raise UsageError("--trust goes with --wacz")
        archive = Path(opts.archive or self.settings["POSTARC_ARCHIVE_DIR"])
        report = verify_archive(archive)
        for problem in report.problems:
            print(problem)
        print(f"{archive}: {report.summary()}")
        self.exitcode = EXIT_OK if report.ok else EXIT_ERROR

    def _run_wacz(self, path: str, trust: list[x509.Certificate] | None) -> None:
        if not Path(path).is_file():
            print(f"postarc: {path}: no such file", file=sys.stderr)
            self.exitcode = EXIT_ERROR
            return
        report = verify_wacz(path, trust)
        for line in report.problems + report.notes:
            print(line)
        state = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        print(f"{path}: {report.files} files checked: {state}")
        self.exitcode = EXIT_OK if report.ok else EXIT_ERROR
