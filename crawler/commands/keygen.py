"""``postarc keygen KEYFILE``: a signing key for ``export_wacz --sign``, owner-only."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archive.signing import SigningKeyError, generate_key, public_key_b64
from crawler.exitcodes import EXIT_ERROR
from crawler.options import add_archive_option


def inside(path: Path, directory: Path) -> bool:
    return path.resolve().is_relative_to(directory.resolve())


class Command(ScrapyCommand):
    requires_project = True
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "KEYFILE"

    def short_desc(self) -> str:
        return "Write an ECDSA P-384 key for signing WACZ exports (mode 0600); prints its public key"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give one key file")
        assert self.settings is not None
        path = Path(args[0])
        archive = Path(opts.archive or self.settings["POSTARC_ARCHIVE_DIR"])
        if inside(path, archive):
            raise UsageError(f"{path}: inside the archive {archive}; keep keys elsewhere")
        try:
            key = generate_key(path)
        except SigningKeyError as exc:
            print(f"postarc: {exc}", file=sys.stderr)
            self.exitcode = EXIT_ERROR
            return
        print(f"{path}: ECDSA P-384 private key; its publicKey (as signed WACZ files show it):")
        print(public_key_b64(key))
