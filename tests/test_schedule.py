"""``postarc schedule``: runs sources on time, one crawl at a time, and stops cleanly on a signal."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from crawler.demo.server import SiteServer
from crawler.demo.site import build_routes
from crawler.lock import ArchiveLock
from tests.helpers import REPO, postarc, posts_of, write_sources
from tests.test_crawl import warcio_check


@contextmanager
def scheduler(sources: Path, archive: Path, log: Path) -> Iterator[subprocess.Popen[str]]:
    """``postarc schedule`` in the background; its stderr goes to ``log``."""
    with log.open("w", encoding="utf-8") as err:
        proc = subprocess.Popen([sys.executable, "-m", "crawler.cli", "schedule", "--sources", str(sources),
                                 "--archive", str(archive)], cwd=REPO, stderr=err, text=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def feed_requests(site: SiteServer, path: str) -> int:
    return sum(1 for p, _h in site.log if p == path)


def crawl_starts(log: str, name: str) -> list[datetime]:
    """When the scheduler started each crawl of ``name``, by its own log (whole seconds, UTC)."""
    return [datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
            for stamp in re.findall(rf"^(\S+) postarc schedule: crawling {re.escape(name)}$", log, re.MULTILINE)]


def test_every_5s_runs_again_no_sooner_than_5s_and_stops_on_sigterm(demo_site: SiteServer, tmp_path: Path):
    sources = write_sources(tmp_path, f"sources:\n  - name: zhihu\n    url: {demo_site.base}/feed.json\n"
                                      f"    every: 5s\n")
    archive, log = tmp_path / "data", tmp_path / "schedule.log"
    with scheduler(sources, archive, log) as proc:
        # However loaded the machine, three crawls come; the timeout only stops a hung scheduler.
        assert wait_for(lambda: feed_requests(demo_site, "/feed.json") >= 3, timeout=180), log.read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    assert not list((archive / "warc").glob("*.open"))
    warcio_check(archive)
    text = log.read_text()
    starts = crawl_starts(text, "zhihu")
    assert len(starts) >= 3 and "stopped" in text, text
    # Counted from the last start: never sooner (a crawl takes about 2 s, so a scheduler that
    # ignored `every` would start the next one at once). The stamps are whole seconds, and a
    # stamp is taken just after the start it logs: hence 4.
    assert all((b - a).total_seconds() >= 4 for a, b in zip(starts, starts[1:])), text
    assert len(posts_of(archive)) == 1


def test_sigterm_during_a_crawl_lets_it_close_its_warc_files(site: SiteServer, tmp_path: Path):
    routes = build_routes(site.base)
    # The crawl is busy when the signal comes, however late a loaded machine sends it: the page
    # answers 10 s after it was asked for (and the crawl, stopping, waits for it).
    routes["/posts/harbour.html"].delay = 10
    site.routes.update(routes)
    sources = write_sources(tmp_path, f"sources:\n  - name: hot\n    url: {site.base}/rss.xml\n"
                                      f"    follow_links: true\n")
    archive, log = tmp_path / "data", tmp_path / "schedule.log"
    with scheduler(sources, archive, log) as proc:
        assert wait_for(lambda: feed_requests(site, "/posts/harbour.html") == 1, timeout=30), log.read_text()
        assert list((archive / "warc").glob("*.open"))  # mid-crawl: a WARC file is being written
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    assert not list((archive / "warc").glob("*.open"))
    warcio_check(archive)
    text = log.read_text()
    assert "crawl of hot exited 5" in text  # the child stopped as an interrupted crawl does
    assert "Traceback" not in text


def test_a_crawl_holding_the_archive_makes_the_scheduler_wait(demo_site: SiteServer, tmp_path: Path):
    sources = write_sources(tmp_path, f"sources:\n  - name: zhihu\n    url: {demo_site.base}/feed.json\n"
                                      f"    every: 1h\n")
    archive, log = tmp_path / "data", tmp_path / "schedule.log"
    lock = ArchiveLock(archive)
    lock.acquire()  # as a cron-started crawl would
    try:
        with scheduler(sources, archive, log) as proc:
            assert wait_for(lambda: "archive busy" in log.read_text(), timeout=30), log.read_text()
            assert feed_requests(demo_site, "/feed.json") == 0
            lock.release()
            assert wait_for(lambda: "crawl of zhihu exited 0" in log.read_text(), timeout=30), log.read_text()
            assert feed_requests(demo_site, "/feed.json") == 1
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0
    finally:
        lock.release()


def test_nothing_to_schedule_is_refused(tmp_path: Path):
    sources = write_sources(tmp_path, "sources:\n  - {name: a, url: 'http://127.0.0.1:9/f', enabled: false}\n")
    run = postarc("schedule", "--sources", str(sources), "--archive", str(tmp_path / "data"))
    assert run.returncode == 2 and "no enabled source" in run.stderr
    run = postarc("schedule", "--sources", str(sources), "--every", "soon")
    assert run.returncode == 2 and "--every" in run.stderr
