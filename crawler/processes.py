"""``postarc crawl --processes N``: the due sources split over N Scrapy processes on one host.

A crawl process has one reactor thread, and that thread is one core: past it, more cores only
help the extraction workers. So the parent (which holds the archive's lock) splits the due
sources by their feed's host, gives each child process a share to crawl as a plain
``postarc crawl --only …``, and merges what they report into one table and one progress line.
A host belongs to one child, so Scrapy's per-domain politeness still holds for the feeds;
the children share the archive as the workers of a shared crawl do (one WARC file each, named
by pid; SQLite in WAL mode; the index merged under its own lock).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from scrapy.settings import SETTINGS_PRIORITIES, BaseSettings

from crawler.progress import INTERVAL, totals_line
from crawler.runner import SourceReport
from crawler.sources import Source, SourcesFile
from crawler.workers import default_workers

#: Settings the parent gives each child (not the user's to set).
HOLDER_SETTING = "POSTARC_LOCK_HOLDER"  # the parent's pid: the child crawls under its lock
REPORT_SETTING = "POSTARC_REPORT_FILE"  # where the child writes its per-source reports (JSON)
PROGRESS_FILE_SETTING = "POSTARC_PROGRESS_FILE"  # where the child's progress totals go instead of a TTY
#: Settings that are the parent's own business, never passed on.
_PARENT_ONLY = {"LOG_FILE", "POSTARC_PROCESSES", "POSTARC_PROGRESS", HOLDER_SETTING, REPORT_SETTING,
                PROGRESS_FILE_SETTING}


def processes_wanted(settings: BaseSettings) -> int:
    """``POSTARC_PROCESSES``, where 0 means one per two cores this process may use, up to the cap.

    One crawl keeps about two cores busy: its reactor thread and its extraction workers. On
    two cores a second process was no faster, for 1.6 times the memory and, on a re-crawl
    with nothing new, 2.5 times the CPU (the parent and each child start Scrapy).
    """
    n = settings.getint("POSTARC_PROCESSES")
    if n > 0:
        return n
    return max(1, min(len(os.sched_getaffinity(0)) // 2, settings.getint("POSTARC_PROCESSES_MAX")))


def split_by_host(config: SourcesFile, sources: list[Source], n: int) -> list[list[Source]]:
    """At most ``n`` shares, a host's sources all in one share, sizes as even as hosts allow.

    Largest host first into the smallest share (the greedy rule for balancing); the sources
    of a share keep the sources file's order.
    """
    by_host: dict[str, list[Source]] = {}
    for source in sources:
        host = (urlsplit(config.feed_url(source)).hostname or "").lower()
        by_host.setdefault(host, []).append(source)
    shares: list[list[Source]] = [[] for _ in range(min(n, len(by_host)))]
    for group in sorted(by_host.values(), key=len, reverse=True):
        min(shares, key=len).extend(group)
    order = {s.name: i for i, s in enumerate(sources)}
    return [sorted(share, key=lambda s: order[s.name]) for share in shares if share]


def passed_on(settings: BaseSettings) -> list[str]:
    """``-s NAME=VALUE`` for every setting given on the command line (options included)."""
    args = []
    for name, value in settings.items():
        if name in _PARENT_ONLY or (settings.getpriority(name) or 0) < SETTINGS_PRIORITIES["cmdline"]:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        args += ["-s", f"{name}={text}"]
    return args


class Children:
    """The child crawls: started together, watched, stopped together, their reports merged."""

    def __init__(self, sources_file: Path, archive: Path, shares: list[list[Source]], settings: BaseSettings,
                 progress: IO[str] | None) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="postarc-processes-")
        self.progress = progress
        self.procs: list[tuple[subprocess.Popen[bytes], list[Source], Path, Path]] = []
        common = passed_on(settings)
        if settings.getint("POSTARC_EXTRACT_WORKERS") == 0:
            # The children share the cores: each gets its part of the workers, not a pool per
            # core each (memory, and processes fighting for CPU).
            common += ["-s", f"POSTARC_EXTRACT_WORKERS={default_workers(len(shares))}"]
        for k, share in enumerate(shares):
            report, totals = Path(self.tmp.name) / f"report-{k}.json", Path(self.tmp.name) / f"progress-{k}.json"
            cmd = [sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources_file), "--archive",
                   str(archive), "--only", ",".join(s.name for s in share), *common,
                   "-s", f"{HOLDER_SETTING}={os.getpid()}", "-s", f"{REPORT_SETTING}={report}",
                   *(["-s", f"{PROGRESS_FILE_SETTING}={totals}", "-s", "POSTARC_PROGRESS=True"] if progress else [])]
            self.procs.append((subprocess.Popen(cmd, stdin=subprocess.DEVNULL), share, report, totals))

    def forward(self, signum: int, _frame: object = None) -> None:
        """SIGINT/SIGTERM to the parent: each child stops as a lone crawl does (exit 5)."""
        for proc, *_ in self.procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    def wait(self) -> None:
        while any(proc.poll() is None for proc, *_ in self.procs):
            if self.progress:
                self.draw()
            time.sleep(INTERVAL)
        if self.progress:
            self.progress.write("\r\033[K")
            self.progress.flush()

    def draw(self) -> None:
        totals: dict[str, int] = {}
        for *_, path in self.procs:
            try:
                for key, value in json.loads(path.read_text()).items():
                    totals[key] = totals.get(key, 0) + value
            except (OSError, ValueError):
                continue  # not written yet, or being replaced
        assert self.progress is not None
        self.progress.write(f"\r\033[K{totals_line(totals)}  "
                            f"({totals.get('active', 0)} downloading, {len(self.procs)} processes)")
        self.progress.flush()

    def results(self) -> tuple[list[SourceReport], list[str], list[str]]:
        """Every source's report, the logs the children wrote, and why any child did not finish."""
        reports, logs, unfinished = [], [], []
        for proc, share, path, _ in self.procs:
            try:
                got: dict[str, Any] = json.loads(path.read_text())
            except (OSError, ValueError):
                got = {}
            if got.get("log"):
                logs.append(got["log"])
            done = {r["name"]: SourceReport(**r) for r in got.get("reports", [])}
            why = got.get("finish_reason") or f"crawl process exited {proc.returncode}"
            if why != "finished":
                unfinished.append(why)
            reports += [done.get(s.name) or SourceReport(s.name, f"failed: {why}", 0, 0, 0, 0, 0) for s in share]
        self.tmp.cleanup()
        return reports, logs, unfinished


def write_report(path: Path, reports: list[SourceReport], finish_reason: str, log: str | None) -> None:
    """A child's results for its parent, replaced whole (the parent never reads half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"reports": [asdict(r) for r in reports], "finish_reason": finish_reason,
                               "log": log}))
    os.replace(tmp, path)


def run_children(sources_file: Path, archive: Path, shares: list[list[Source]], settings: BaseSettings,
                 progress: IO[str] | None) -> tuple[list[SourceReport], list[str], list[str]]:
    children = Children(sources_file, archive, shares, settings, progress)
    previous = {sig: signal.signal(sig, children.forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        children.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return children.results()


