"""Crash safety: a crawl killed with SIGKILL at random moments, three times, then let finish, leaves
a complete archive; a disk that fills up mid-crawl stops it with a clear error and whole files.
"""

from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import psutil
import pytest

from archive.frontmatter import read_front_matter
from archive.markdown import _HOST, TEMP_PREFIX
from archive.verify import verify_archive
from archive.warc.writer import OPEN_SUFFIX
from tests.faults import feed_text, rss, rss_item, wait_for
from tests.helpers import REPO, postarc, posts_of, warcio_check, write_sources
from tests.rawhttp import Behaviour, RawSite, ok

SEED = 20261128
N_PAGES = 48  # entries with an article page and an image
N_JSON = 8  # entries of a JSON Feed, one without a date


def aggregator(site: RawSite, image_size: int = 30_000) -> set[str]:
    """Two feeds on ``site``; returns the guids a complete archive holds."""
    rng = random.Random(SEED)
    site.routes["/robots.txt"] = ok(b"User-agent: *\nAllow: /\n", "text/plain")
    items = []
    for i in range(N_PAGES):
        site.routes[f"/p/{i}.html"] = ok(f"<html><body><article><h1>Post {i}</h1><p>{f'Page words {i}. ' * 400}</p>"
                                         f"</article></body></html>".encode())
        site.routes[f"/img/{i}.png"] = ok(rng.randbytes(image_size), "image/png")
        items.append(rss_item(guid=f"page-{i}", title=f"Post {i}", link=f"{site.base}/p/{i}.html",
                              html=feed_text(f"page-{i}") + f'<img src="{site.base}/img/{i}.png">'))
    site.routes["/feed.xml"] = ok(rss("pages", items), "application/rss+xml")
    entries = [{"id": f"json-{i}", "title": f"JSON {i}", "content_html": feed_text(f"json-{i}"),
                **({"date_published": "2024-07-25T14:08:07+08:00"} if i else {})} for i in range(N_JSON)]
    site.routes["/feed.json"] = ok(json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "j",
                                               "items": entries}).encode(), "application/feed+json")
    return {f"page-{i}" for i in range(N_PAGES)} | {f"json-{i}" for i in range(N_JSON)}


SOURCES = """sources:
  - name: pages
    url: {base}/feed.xml
    follow_links: true
  - name: json
    url: {base}/feed.json
"""


def crawl_args(sources: Path, archive: Path) -> list[str]:
    return [sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources), "--archive", str(archive)]


def kill_when(sources: Path, archive: Path, reached: Callable[[], bool]) -> int:
    """A crawl killed with SIGKILL (its whole process group) once ``reached()``; its exit status."""
    proc = subprocess.Popen(crawl_args(sources, archive), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        assert wait_for(lambda: reached() or proc.poll() is not None, timeout=90)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode


def warc_bytes(archive: Path) -> int:
    return sum(p.stat().st_size for p in (archive / "warc").glob("*" + OPEN_SUFFIX)) if (archive / "warc").is_dir() else 0


def markdown_count(archive: Path) -> int:
    return sum(1 for _ in (archive / "posts").rglob("*.md")) if (archive / "posts").is_dir() else 0


def warc_over(archive: Path, size: int) -> bool:
    return warc_bytes(archive) > size


def markdown_at_least(archive: Path, count: int) -> bool:
    return markdown_count(archive) >= count


def leftovers(archive: Path) -> list[Path]:
    """Temp files and open WARC files: what a run that ended properly leaves none of."""
    return [p for p in archive.rglob("*")
            if p.name.startswith(TEMP_PREFIX) or p.name.endswith((".tmp", OPEN_SUFFIX))]


def check_complete(archive: Path, guids: set[str]) -> None:
    posts = posts_of(archive)
    counts = Counter(fm["guid"] for fm, _body in posts.values())
    assert set(counts) == guids, set(counts) ^ guids
    assert max(counts.values()) == 1, [g for g, n in counts.items() if n > 1]  # one .md per guid
    for rel, (fm, body) in posts.items():
        assert f"Feed text of {fm['guid']}" in body or "Page words" in body, rel
        if fm["guid"].startswith("page-"):
            assert ((archive / "posts" / rel).parent / fm["headimg"]).is_file(), rel
    assert leftovers(archive) == []
    warcio_check(archive)
    run = postarc("verify", "--archive", str(archive))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]


def test_three_kills_then_a_full_run_leave_a_complete_archive(tmp_path: Path):
    rng = random.Random(SEED)
    archive = tmp_path / "data"
    with RawSite(delay=0.15) as site:
        guids = aggregator(site)
        sources = write_sources(tmp_path, SOURCES.format(base=site.base))
        # Three moments, each drawn from the seed: early (once the first records are written),
        # then twice a few Markdown files after the run started.
        early, *steps = rng.randrange(4_000, 60_000), rng.randrange(1, 8), rng.randrange(1, 8)
        for n in range(3):
            reached = (partial(warc_over, archive, early) if n == 0
                       else partial(markdown_at_least, archive, markdown_count(archive) + steps[n - 1]))
            assert kill_when(sources, archive, reached) == -signal.SIGKILL, f"run {n + 1} ended before its kill"
            assert markdown_count(archive) < len(guids), f"run {n + 1} archived everything before its kill"
        # Two states a kill leaves more rarely than these three did, made by hand: a temp file of
        # a writer killed mid-write, and a Markdown file written just before its catalogue row.
        posts = sorted((archive / "posts").rglob("*.md"))
        with subprocess.Popen(["true"]) as gone:  # a writer that is no more
            pass
        stale = posts[0].with_name(f"{TEMP_PREFIX}{_HOST}-{gone.pid}-x1y2z3")
        stale.write_text("---\ntitle: half", encoding="utf-8")
        orphan = read_front_matter(posts[-1].read_text(encoding="utf-8"))[0]["guid"]
        with sqlite3.connect(archive / "state.sqlite") as db:
            db.execute("DELETE FROM posts WHERE guid = ?", (orphan,))
        # The kills may have left temp files of their own (more often on a loaded machine): all go.
        temps = sum(1 for _ in (archive / "posts").rglob(TEMP_PREFIX + "*"))
        site.delay = 0
        final = postarc("crawl", "--sources", str(sources), "--archive", str(archive), timeout=180)
    assert final.returncode == 0, final.stderr[-3000:]
    assert f"removed {temps} temp files left by a killed crawl" in final.stderr
    check_complete(archive, guids)


# -- a full disk -----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[tuple[Path, Callable[[], None] | None]]:
    """A 4 MB file system (tmpfs, as root), else a 2 MB file size limit on the crawl process.

    Yields the directory and the ``preexec_fn`` the crawl needs (None on tmpfs): either way a
    write past the limit fails (ENOSPC, or EFBIG) as on a full disk.
    """
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                             capture_output=True, check=False).returncode == 0
    if mounted:
        try:
            yield mount, None
        finally:
            subprocess.run(["umount", "-l", str(mount)], check=False)
    else:
        def limit_file_size() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
            resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 20, 2 << 20))

        yield mount, limit_file_size


def once(condition: Callable[[], bool], answer: bytes) -> Behaviour:
    """``answer``, sent once ``condition()`` holds (or after a minute)."""

    def send(conn: socket.socket) -> bool:
        wait_for(condition, timeout=60)
        conn.sendall(answer)
        return True

    return send


def test_a_full_disk_stops_the_crawl_with_a_clear_error_and_whole_files(tmp_path: Path, small_disk):
    disk, preexec = small_disk
    archive = disk / "data"
    with RawSite(delay=0.1) as site:  # slow enough that posts are written while the disk fills
        guids = aggregator(site, image_size=80_000)  # ~8 MB to store: twice the room there is
        for i in range(N_PAGES):  # the images fill the disk, and not before a post was written
            site.routes[f"/img/{i}.png"] = once(partial(markdown_at_least, archive, 1), site.routes[f"/img/{i}.png"])
        sources = write_sources(tmp_path, SOURCES.format(base=site.base))
        full = subprocess.run(crawl_args(sources, archive), cwd=REPO, capture_output=True, text=True, timeout=300,
                              preexec_fn=preexec, check=False)
        assert full.returncode == 5, full.stderr[-3000:]
        # Whichever write met the full disk first: a file's (ENOSPC, or EFBIG) or the catalogue's.
        assert re.search(r"^postarc: ERROR: disk full: (\[Errno \d+\]|database or disk is full)", full.stderr,
                         re.MULTILINE), full.stderr[-3000:]
        assert "postarc: crawl interrupted (disk full); the next run resumes it" in full.stderr
        # One line says it: no traceback (a postarc bug's sign), not even the log file's own.
        assert "Traceback" not in full.stderr and "Logging error" not in full.stderr, full.stderr[-3000:]
        # Fetches whose records met the full disk say so in its words, not as a download failure.
        logs = "".join(p.read_text(errors="replace") for p in (archive / "logs").glob("*.log"))
        assert "download failed" not in full.stderr + logs, full.stderr[-3000:]
        # What is there is whole: closed WARC files that pass warcio check, no temp files, every
        # Markdown file complete.
        assert 0 < markdown_count(archive) < len(guids)
        assert leftovers(archive) == []
        warcio_check(archive)
        for rel, (fm, body) in posts_of(archive).items():
            assert fm["guid"] in guids and f"Feed text of {fm['guid']}" in body, rel
        # With space again, the next run completes the archive.
        roomy = tmp_path / "data"
        shutil.copytree(archive, roomy)
        again = postarc("crawl", "--sources", str(sources), "--archive", str(roomy), timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    check_complete(roomy, guids)
    assert verify_archive(roomy).ok


def test_an_enclosure_that_fills_the_disk_stops_the_crawl_as_any_write(tmp_path: Path, small_disk):
    """The spooled download of an enclosure meets the full disk (not a lost connection): the
    crawl stops with exit 5 and one line, the post is left whole for the next run."""
    disk, preexec = small_disk
    archive = disk / "data"
    with RawSite() as site:
        site.routes["/robots.txt"] = ok(b"User-agent: *\nAllow: /\n", "text/plain")
        site.routes["/ep.mp3"] = ok(random.Random(SEED).randbytes(6 << 20), "audio/mpeg")  # more than the disk
        site.routes["/feed.xml"] = ok(rss("show", [
            rss_item(guid="ep-1", title="Episode 1", html=feed_text("ep-1"))
            .replace("</item>", f'<enclosure url="{site.base}/ep.mp3" type="audio/mpeg"/></item>')]),
            "application/rss+xml")
        sources = write_sources(tmp_path, f'sources:\n  - {{name: show, url: "{site.base}/feed.xml", '
                                          'enclosures: local}\n')
        full = subprocess.run(crawl_args(sources, archive), cwd=REPO, capture_output=True, text=True, timeout=300,
                              preexec_fn=preexec, check=False)
        assert full.returncode == 5, full.stderr[-3000:]
        assert re.search(r"^postarc: ERROR: disk full: \[Errno \d+\]", full.stderr, re.MULTILINE), full.stderr[-3000:]
        assert "postarc: crawl interrupted (disk full); the next run resumes it" in full.stderr
        assert "connection lost" not in full.stderr and "Traceback" not in full.stderr, full.stderr[-3000:]
        assert f"enclosure {site.base}" not in full.stderr, full.stderr[-3000:]  # the crawl's fate, not a failed file
        assert markdown_count(archive) == 0  # the post is left for the next run, not written without its file
        assert leftovers(archive) == []
        warcio_check(archive)
        roomy = tmp_path / "data"
        shutil.copytree(archive, roomy)
        again = postarc("crawl", "--sources", str(sources), "--archive", str(roomy), timeout=180)
    assert again.returncode == 0, again.stderr[-3000:]
    (fm, _body), = posts_of(roomy).values()
    assert fm["guid"] == "ep-1" and fm["enclosures"][0]["file"].endswith("/ep.mp3")


def test_the_workers_of_a_killed_crawl_exit_too(tmp_path: Path):
    """kill -9 of the crawl process alone (not its group): its extraction workers do not outlive it.

    Orphaned, they would wait on their call queue for ever, holding the crawl's stdout and stderr:
    cron, or any caller reading them, would never see the end of the output.
    """
    with RawSite(delay=0.05) as site:
        aggregator(site)
        sources = write_sources(tmp_path, SOURCES.format(base=site.base))
        proc = subprocess.Popen(crawl_args(sources, tmp_path / "data"), cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        crawl = psutil.Process(proc.pid)
        try:
            assert wait_for(lambda: markdown_at_least(tmp_path / "data", 1) or proc.poll() is not None, timeout=90)
            workers = [p for p in crawl.children(recursive=True) if "spawn_main" in " ".join(p.cmdline())]
            assert workers, "the crawl had no worker processes to orphan"
        finally:
            proc.kill()  # the crawl process only: its workers are left to themselves
        proc.communicate(timeout=60)  # returns only once every holder of the pipes is gone
        _, alive = psutil.wait_procs(workers, timeout=15)
        assert not alive


# Loaded by every Python process of a crawl (PYTHONPATH): appends the path of each fsynced file
# to $FSYNC_LOG, then fsyncs it.
_FSYNC_RECORDER = """import os
_fsync = os.fsync
def _recorded(fd):
    with open(os.environ["FSYNC_LOG"], "a") as log:
        log.write(os.readlink(f"/proc/self/fd/{fd}") + "\\n")
    _fsync(fd)
os.fsync = _recorded
"""


@pytest.mark.parametrize("fsync", [False, True], ids=["default", "POSTARC_FSYNC_FILES"])
def test_post_and_image_files_are_fsynced_only_when_asked(tmp_path: Path, fsync: bool):
    """A kill needs only the rename (the test above); ``POSTARC_FSYNC_FILES`` adds an fsync of
    each post and image file before it, for power loss. The WARC is fsynced when it closes, either way."""
    (tmp_path / "recorder").mkdir()
    (tmp_path / "recorder" / "sitecustomize.py").write_text(_FSYNC_RECORDER)
    log = tmp_path / "fsynced.txt"
    log.touch()
    archive = tmp_path / "data"
    with RawSite() as site:
        guids = aggregator(site)
        sources = write_sources(tmp_path, SOURCES.format(base=site.base))
        env = {**os.environ, "PYTHONPATH": str(tmp_path / "recorder"), "FSYNC_LOG": str(log)}
        run = subprocess.run([*crawl_args(sources, archive), "-s", f"POSTARC_FSYNC_FILES={fsync}"], cwd=REPO,
                             env=env, capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    check_complete(archive, guids)
    fsynced = [Path(line) for line in log.read_text().splitlines()]
    posts_dir = (archive / "posts").resolve()
    in_posts = [p for p in fsynced if posts_dir in p.parents]
    files = [p for p in posts_dir.rglob("*") if p.is_file()]
    assert len(files) == len(guids) + N_PAGES  # a post each, an image each for the pages
    # Each was fsynced under its temp name, renamed after.
    assert all(p.name.startswith(TEMP_PREFIX) for p in in_posts)
    assert len(in_posts) == (len(files) if fsync else 0)
    assert any(p.parent == (archive / "warc").resolve() for p in fsynced)
