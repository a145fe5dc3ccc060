"""``postarc crawl --processes N``: sources split by host over N crawl processes, one archive.

Two sample aggregators on two loopback hosts (127.0.0.1 and 127.0.0.2: two hosts to Scrapy's
politeness, one machine), crawled by the real CLI with two processes and with one.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from crawler.demo.server import SiteServer
from crawler.demo.site import build_routes, sources_yaml
from crawler.processes import processes_wanted, split_by_host
from crawler.sources import load_sources
from crawler.workers import default_workers
from tests.helpers import postarc, posts_of, warc_records, warcio_check, write_sources


@pytest.fixture
def two_hosts() -> Iterator[tuple[SiteServer, SiteServer]]:
    with SiteServer(host="127.0.0.1") as one, SiteServer(host="127.0.0.2") as two:
        one.routes.update(build_routes(one.base))
        two.routes.update(build_routes(two.base))
        yield one, two


def both_sources(tmp_path: Path, one: SiteServer, two: SiteServer) -> Path:
    """The demo's three sources on each host, named apart; the second host's routes spelled out."""
    first = sources_yaml(one.base)
    second = sources_yaml(two.base).split("sources:\n", 1)[1]
    second = second.replace("name: demo-", "name: two-").replace("rsshub://rss.xml", f"{two.base}/rss.xml")
    # Two copies of one aggregator: under dedup: across each story would be one post, kept by
    # whichever process met it first. What is compared here is one post per entry.
    first = first.replace("sources:\n", "defaults:\n  dedup: within\nsources:\n", 1)
    return write_sources(tmp_path, first + second)


@pytest.mark.parametrize(("cores", "wanted"), [(1, 1), (2, 1), (3, 1), (4, 2), (16, 8), (64, 8)])
def test_default_is_one_process_per_two_cores_up_to_the_cap(monkeypatch, cores, wanted):
    from scrapy.settings import Settings

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert processes_wanted(Settings({"POSTARC_PROCESSES": 0, "POSTARC_PROCESSES_MAX": 8})) == wanted
    assert processes_wanted(Settings({"POSTARC_PROCESSES": 3, "POSTARC_PROCESSES_MAX": 8})) == 3


@pytest.mark.parametrize(("cores", "processes", "workers"), [(1, 1, 1), (2, 1, 1), (4, 1, 3), (4, 2, 1), (16, 8, 1),
                                                              (16, 4, 3)])
def test_workers_take_the_cores_the_reactors_leave(monkeypatch, cores, processes, workers):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert default_workers(processes) == workers


def test_two_processes_archive_what_one_does(two_hosts, tmp_path):
    sources = both_sources(tmp_path, *two_hosts)
    split = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "two"), "--processes", "2")
    assert split.returncode == 0, split.stderr[-3000:]
    alone = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "one"), "--processes", "1")
    assert alone.returncode == 0, alone.stderr[-3000:]

    # The same posts, byte for byte but for when they were archived and into which WARC file.
    def comparable(archive: Path) -> dict[str, tuple[dict, str]]:
        return {path: ({k: v for k, v in meta.items() if k not in ("archived", "warc")}, body)
                for path, (meta, body) in posts_of(archive).items()}
    assert comparable(tmp_path / "two") == comparable(tmp_path / "one")
    assert len(posts_of(tmp_path / "two")) >= 6

    # One merged table: every source once, in the sources file's order.
    table = [line.split()[0] for line in split.stderr.splitlines() if line.startswith(("demo-", "two-"))]
    assert table == ["demo-hot", "demo-blog", "demo-zhihu", "two-hot", "two-blog", "two-zhihu"]

    # One WARC file per process, and a host's requests all in one of them.
    files_of_host: dict[str, set[str]] = {}
    for name, record, _ in warc_records(tmp_path / "two"):
        if record.rec_type == "request":
            host = urlsplit(record.rec_headers.get_header("WARC-Target-URI")).hostname
            files_of_host.setdefault(host, set()).add(name)
    assert set(files_of_host) == {"127.0.0.1", "127.0.0.2"}
    assert all(len(files) == 1 for files in files_of_host.values())
    assert files_of_host["127.0.0.1"] != files_of_host["127.0.0.2"]
    warcio_check(tmp_path / "two")
    verify = postarc("verify", "--archive", str(tmp_path / "two"))
    assert verify.returncode == 0, verify.stdout + verify.stderr

    # The catalogue knows every post once, and the next run of both processes writes nothing.
    with sqlite3.connect(tmp_path / "two" / "state.sqlite") as db:
        assert db.execute("select count(*) from posts").fetchone()[0] == len(posts_of(tmp_path / "two"))
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "two" / "posts").rglob("*.md")}
    again = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "two"), "--processes", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "two" / "posts").rglob("*.md")} == before


def test_a_failed_source_in_one_process_fails_the_run_not_the_others(two_hosts, tmp_path):
    one, two = two_hosts
    two.routes.clear()  # every URL of the second host answers 404
    sources = both_sources(tmp_path, one, two)
    run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "data"), "--processes", "2")
    assert run.returncode == 3, run.stderr[-3000:]
    assert "postarc: source two-blog failed: failed: HTTP 404" in run.stderr
    assert "postarc: source demo-blog failed" not in run.stderr
    assert {meta["source"].split("/")[2].split(":")[0] for meta, _ in posts_of(tmp_path / "data").values()} \
        == {"127.0.0.1"}


def test_split_keeps_a_host_in_one_share_and_balances(tmp_path):
    hosts = ["a.example", "a.example", "a.example", "b.example", "c.example", "c.example", "d.example"]
    lines = "".join(f"  - name: s{k}\n    url: https://{h}/feed{k}.xml\n" for k, h in enumerate(hosts))
    config = load_sources(write_sources(tmp_path, "sources:\n" + lines))
    shares = split_by_host(config, config.sources, 2)
    assert [[s.name for s in share] for share in shares] == [["s0", "s1", "s2", "s6"], ["s3", "s4", "s5"]]
    assert len(split_by_host(config, config.sources, 8)) == 4  # no more shares than hosts
    assert len(split_by_host(config, config.sources[:3], 2)) == 1  # one host: crawled in-process


def test_a_killed_child_loses_nothing(two_hosts, tmp_path):
    """kill -9 of one child: the run says interrupted (exit 5), and the next run completes the archive."""
    sources = both_sources(tmp_path, *two_hosts)
    archive = tmp_path / "data"
    parent = subprocess.Popen([sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources), "--archive",
                               str(archive), "--processes", "2"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(psutil.Process(parent.pid).children()) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = psutil.Process(parent.pid).children()[0]
    os.kill(victim.pid, signal.SIGKILL)
    _, stderr = parent.communicate(timeout=120)
    assert parent.returncode == 5, stderr[-3000:]
    assert "the next run resumes it" in stderr

    again = postarc("crawl", "--sources", str(sources), "--archive", str(archive), "--processes", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    alone = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "one"), "--processes", "1")
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert sorted(posts_of(archive)) == sorted(posts_of(tmp_path / "one"))
    assert postarc("verify", "--archive", str(archive)).returncode == 0
