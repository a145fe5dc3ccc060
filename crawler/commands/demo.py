"""``postarc demo``: serve the bundled sample aggregator on 127.0.0.1 and archive it."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from scrapy.commands import ScrapyCommand

from crawler.demo.server import SiteServer
from crawler.demo.site import build_routes, sources_yaml
from crawler.exitcodes import EXIT_ERROR, EXIT_OK
from crawler.ledger import ledger_of
from crawler.options import ArchiveOptionsMixin, add_archive_option, add_output_options
from crawler.runlog import log_to_archive, warnings_to_stderr
from crawler.runner import archive_summary, print_reports, run_feeds, source_reports
from crawler.sources import load_sources


class Command(ArchiveOptionsMixin, ScrapyCommand):
    requires_project = True

    def syntax(self) -> str:
        return "[--archive DIR]"

    def short_desc(self) -> str:
        return "Archive the bundled sample aggregator (served on 127.0.0.1)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)
        add_output_options(parser)

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        assert self.settings is not None
        log_to_archive(self.settings)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.crawler_process is not None and self.settings is not None
        archive = Path(self.settings["POSTARC_ARCHIVE_DIR"])
        archive.mkdir(parents=True, exist_ok=True)
        warnings_to_stderr(self.settings)
        with SiteServer() as site:
            site.routes.update(build_routes(site.base))
            sources = archive / "demo-sources.yaml"
            sources.write_text(sources_yaml(site.base), encoding="utf-8")
            print(f"postarc demo: archiving the sample aggregator at {site.base}/ into {archive}/ "
                  "(one article link is dead on purpose: its post keeps the feed's text)", file=sys.stderr)
            crawler = run_feeds(self.crawler_process, sources)
        if self.crawler_process.bootstrap_failed:
            self.exitcode = EXIT_ERROR
            return
        print_reports(source_reports(ledger_of(crawler), load_sources(sources)), out=sys.stdout)
        print(layout(archive, sources, self.settings.get("LOG_FILE")))
        self.exitcode = EXIT_OK


def layout(archive: Path, sources: Path, log: str | None) -> str:
    """What the demo left on disk, and the command that shows it."""
    s = archive_summary(archive)
    parts = {
        "posts/": "Markdown with front matter (Hexo-ready), images beside each post",
        "warc/": f"{s['warc_files']} WARC file(s), {s['warc_bytes']:,} bytes: every request and response",
        "indexes/": "index.cdxj: where each capture is in the WARC files",
        "state.sqlite": "the catalogue: posts, sources and their validators, payload digests",
        sources.name: "the sources file the demo crawled",
    }
    if log:
        parts["logs/"] = f"Scrapy's log of this run: {Path(log).name}"
    width = max(map(len, parts))
    lines = [f"\nArchived {s['posts']} posts into {s['archive']}/"]
    lines += [f"  {name:<{width}}  {what}" for name, what in parts.items()]
    lines += ["", "Next, browse it (then open http://127.0.0.1:8080/):",
              f"  postarc replay --archive {shlex.quote(str(archive))}"]
    return "\n".join(lines)
