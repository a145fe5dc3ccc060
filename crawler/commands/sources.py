"""``postarc sources import FILE.opml | export [-o FILE] | list`` ``--sources FILE``.

OPML in and out (what every feed reader imports and exports), and each source with when it
is due and how its last run went.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archive.catalogue import Catalogue
from archive.policy import parse_time
from crawler.exitcodes import EXIT_ERROR, EXIT_USAGE
from crawler.opml import OpmlError, read_opml, write_opml
from crawler.options import add_archive_option
from crawler.sources import Source, SourcesError, SourcesFile, load_sources, refuse_sources
from crawler.sources_edit import import_outlines

ACTIONS = ("import", "export", "list")


class Command(ScrapyCommand):
    requires_project = True
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "import FILE.opml | export [-o FILE] | list  --sources FILE [--archive DIR]"

    def short_desc(self) -> str:
        return "Import or export the sources as OPML; list them with when they are due"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--sources", metavar="FILE", default="sources.yaml",
                            help="sources file (YAML; default: ./sources.yaml)")
        parser.add_argument("-o", "--output", metavar="FILE", help="export: write the OPML here (default: stdout)")
        add_archive_option(parser)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if not args or args[0] not in ACTIONS:
            raise UsageError(f"give one of: {', '.join(ACTIONS)}")
        action, rest = args[0], args[1:]
        if action == "import":
            if len(rest) != 1:
                raise UsageError("import takes one OPML file")
            self.exitcode = self.import_opml(Path(rest[0]), Path(opts.sources))
            return
        if rest:
            raise UsageError(f"{action} takes no file argument")
        try:
            config = load_sources(opts.sources)
        except SourcesError as exc:
            self.exitcode = refuse_sources(exc)
            return
        if action == "export":
            self.export(config, opts.output)
        else:
            assert self.settings is not None
            self.list(config, Path(opts.archive or self.settings["POSTARC_ARCHIVE_DIR"]))

    @staticmethod
    def import_opml(opml: Path, sources: Path) -> int:
        try:
            outlines = read_opml(opml)
        except OpmlError as exc:
            print(f"postarc: bad OPML: {opml}: {exc}; {sources} left as it was", file=sys.stderr)
            return EXIT_USAGE
        try:
            report = import_outlines(sources, outlines)
        except SourcesError as exc:
            return refuse_sources(exc)
        except OSError as exc:
            print(f"postarc: cannot write {sources}: {exc}", file=sys.stderr)
            return EXIT_ERROR
        for name, url in report.added:
            print(f"added    {name}  {url}")
        for url, why in report.skipped:
            print(f"skipped  {url}  ({why})")
        print(f"{sources}: {len(report.added)} added, {len(report.skipped)} skipped", file=sys.stderr)
        return 0

    @staticmethod
    def export(config: SourcesFile, output: str | None) -> None:
        data = write_opml(config)
        if output:
            Path(output).write_bytes(data)
            print(f"{output}: {len(config.sources)} feed(s)", file=sys.stderr)
        else:
            sys.stdout.buffer.write(data)

    @staticmethod
    def list(config: SourcesFile, archive: Path) -> None:
        states: dict[str, dict] = {}
        if (archive / "state.sqlite").exists():
            catalogue = Catalogue.of_archive(archive)
            try:
                states = {row["name"]: row for row in catalogue.sources()}
            finally:
                catalogue.close()
        now = datetime.now(timezone.utc)
        rows = [("name", "url", "due", "last run", "last status")]
        for source in config.sources:
            state = states.get(source.name) or {}
            last = state.get("last_run")
            rows.append((source.name, source.url, _due(source, last, now),
                         last or "never", state.get("last_status") or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4])


def _due(source: Source, last_run: str | None, now: datetime) -> str:
    """``disabled``, ``now``, ``with every crawl`` (no timing of its own), else the UTC time."""
    if not source.enabled:
        return "disabled"
    due = source.next_run(parse_time(last_run))
    if due is None:
        return "with every crawl"
    return "now" if due <= now else due.strftime("%Y-%m-%dT%H:%M:%SZ")
