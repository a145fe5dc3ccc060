"""``postarc schedule --sources FILE``: stay up and run each source at its ``schedule``/``every``.

Each crawl is a child process (``postarc crawl --only NAMES``): Scrapy's reactor cannot be
restarted in one process, and a child that ends frees everything it held. One crawl at a time:
the child takes the archive's lock (``crawler.lock``), so a crawl started by cron or by hand
cannot overlap either; while someone else holds it, the scheduler waits.

SIGTERM/SIGINT: forwarded once to the running crawl, which shuts down the Scrapy way (in-flight
work finishes or stops, WARC files are closed); then the scheduler exits 0. The child runs in
its own session, so a Ctrl-C at the terminal reaches it once (through the scheduler), not twice
(a second signal makes Scrapy stop at once, unclean).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from crawler.credentials import SecretsError, resolve
from crawler.exitcodes import EXIT_BUSY, EXIT_OK, EXIT_USAGE
from crawler.lock import is_locked
from crawler.options import ArchiveOptionsMixin, add_archive_option, add_output_options, add_secrets_option
from crawler.runner import last_runs
from crawler.sources import SourcesError, SourcesFile, load_sources, parse_every, refuse_sources

#: Longest sleep before the catalogue is read again (a cron-started crawl may have run sources).
REPLAN_S = 60.0
#: How often a sleeping scheduler checks for a signal, and waits for a busy archive.
TICK_S, BUSY_WAIT_S = 0.5, 5.0


def log(message: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{stamp} postarc schedule: {message}", file=sys.stderr, flush=True)


class Scheduler:
    def __init__(self, config: SourcesFile, archive: Path, crawl_args: list[str], default_every: int) -> None:
        self.config = config
        self.archive = archive
        self.crawl_args = crawl_args
        self.default_every = default_every
        self.attempted: dict[str, datetime] = {}  # covers crawls that ended before recording last_run
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.returncode is None:
            os.kill(self.child.pid, signum)

    def plan(self) -> dict[str, datetime]:
        """Next run of every enabled source, from the catalogue's last runs and our own attempts."""
        runs = last_runs(self.archive, self.config)
        plan = {}
        for source in self.config.sources:
            if not source.enabled:
                continue
            last = max((t for t in (runs.get(source.name), self.attempted.get(source.name)) if t), default=None)
            due = source.next_run(last, self.default_every)
            assert due is not None  # default_every gives every source a timing
            plan[source.name] = due
        return plan

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early on a signal (checked every TICK_S: no locks in signal handlers)."""
        end = time.monotonic() + seconds
        while not self.stopping and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, TICK_S))

    def crawl(self, names: list[str]) -> int:
        started = datetime.now(timezone.utc)
        for name in names:
            self.attempted[name] = started
        log(f"crawling {', '.join(names)}")
        cmd = [sys.executable, "-m", "crawler.cli", "crawl", "--only", ",".join(names), *self.crawl_args]
        self.child = subprocess.Popen(cmd, start_new_session=True)
        if self.stopping:  # a signal that came before the child existed
            self.child.send_signal(signal.SIGTERM)
        code = self.child.wait()
        self.child = None
        log(f"crawl of {', '.join(names)} exited {code}")
        return code

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.on_signal)
        log(f"{len(self.plan())} source(s), archive {self.archive.resolve()}")
        while not self.stopping:
            now = datetime.now(timezone.utc)
            plan = self.plan()
            due = [name for name, when in plan.items() if when <= now]
            if not due:
                self.sleep(min(REPLAN_S, (min(plan.values()) - now).total_seconds()))
            elif is_locked(self.archive):
                log(f"archive busy (another crawl holds {self.archive / '.lock'}); waiting")
                self.sleep(BUSY_WAIT_S)
            elif self.crawl(due) == EXIT_BUSY:  # lost a race for the lock: not an attempt
                for name in due:
                    self.attempted.pop(name, None)
                self.sleep(BUSY_WAIT_S)
        log("stopped")
        return EXIT_OK


class Command(ArchiveOptionsMixin, ScrapyCommand):
    requires_project = True
    requires_crawler_process = False

    def syntax(self) -> str:
        return "--sources FILE [--archive DIR] [--every DURATION]"

    def short_desc(self) -> str:
        return "Stay up and crawl each source on its schedule, one crawl at a time"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.add_argument("--sources", metavar="FILE", required=True, help="sources file (YAML)")
        parser.add_argument("--every", metavar="DURATION", default="1h",
                            help="how often to crawl sources that have neither schedule nor every (default 1h)")
        add_archive_option(parser)
        add_secrets_option(parser)
        add_output_options(parser)

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None
        try:
            default_every = parse_every(opts.every)
        except ValueError as exc:
            raise UsageError(f"--every: {exc}", print_help=False) from None
        try:
            config = load_sources(opts.sources)
        except SourcesError as exc:
            self.exitcode = refuse_sources(exc)
            return
        try:
            resolve(config, self.settings.get("POSTARC_SECRETS_FILE") or None)
        except SecretsError as exc:
            print(f"postarc: {exc}\nnothing done", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        if not any(s.enabled for s in config.sources):
            print(f"postarc: {opts.sources}: no enabled source to schedule", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        archive = Path(self.settings["POSTARC_ARCHIVE_DIR"])
        self.exitcode = Scheduler(config, archive, self.crawl_args(opts, archive), default_every).run()

    @staticmethod
    def crawl_args(opts: argparse.Namespace, archive: Path) -> list[str]:
        """What each child crawl is told: the same sources, archive, output options and ``-s``."""
        out = ["--sources", str(Path(opts.sources).resolve()), "--archive", str(archive.resolve())]
        if opts.secrets:
            out += ["--secrets", str(Path(opts.secrets).resolve())]
        for option in ("body", "date_format", "images", "image_proxy"):
            value = getattr(opts, option, None)
            if value is not None:
                out += [f"--{option.replace('_', '-')}", value]
        for setting in opts.set:
            out += ["-s", setting]
        return out
