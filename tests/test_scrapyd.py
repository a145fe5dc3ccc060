"""Scrapyd, end to end: deploy the project to a local Scrapyd (scrapyd and scrapyd-client from
PyPI, in the test extra), schedule the feeds spider over HTTP, find the archive written.

This is the walk-through of docs/operations.md ("Scrapyd") and docs/distributed.md, run as written: a
Scrapyd of our own on a free 127.0.0.1 port with its files in a temporary directory,
``scrapyd-deploy`` run in a copy of the project (it writes ``setup.py`` and build files where
it runs), ``schedule.json`` with the sources file as spider argument and the archive as a
setting, ``listjobs.json`` polled until the job is finished.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlencode

import pytest

from crawler.demo.server import SiteServer
from tests.conftest import needs_tool
from tests.helpers import REPO, posts_of, warcio_check
from tests.ports import start_server
from tests.test_redis import POSTS, aggregator, assert_archived_once, fetched, redis_url, sources_file  # noqa: F401

pytestmark = needs_tool("scrapyd and scrapyd-client (the test extra: pip install -e '.[test]')",
                        find_spec("scrapyd") and find_spec("scrapyd_client"))

BIN = Path(sys.executable).parent


def call(url: str, data: list[tuple[str, str]] | None = None) -> dict:
    body = urlencode(data).encode() if data is not None else None
    with urllib.request.urlopen(url, data=body, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def scrapyd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Scrapyd on 127.0.0.1 whose eggs, logs and databases live in a temporary directory,
    with the project deployed to it."""
    home = tmp_path_factory.mktemp("scrapyd")

    def start(port: int) -> subprocess.Popen:  # its http_port = 0 is refused, not a port of the kernel's choice
        (home / "scrapyd.conf").write_text(
            f"[scrapyd]\nbind_address = 127.0.0.1\nhttp_port = {port}\npoll_interval = 0.5\nmax_proc = 2\n"
            "eggs_dir = eggs\nlogs_dir = logs\ndbs_dir = dbs\n")
        with (home / "scrapyd.out").open("wb") as out:
            return subprocess.Popen([sys.executable, "-m", "scrapyd"], cwd=home, stdout=out, stderr=subprocess.STDOUT)

    def ready(port: int) -> bool:
        try:
            return call(f"http://127.0.0.1:{port}/daemonstatus.json")["status"] == "ok"
        except (OSError, ValueError):
            return False

    proc, port = start_server(start, ready, "scrapyd", log=home / "scrapyd.out")
    url = f"http://127.0.0.1:{port}/"
    try:
        deploy(url, tmp_path_factory.mktemp("project"))
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def deploy(url: str, project: Path) -> None:
    """``scrapyd-deploy`` from a copy of the project (in ``project``) whose ``[deploy]`` target is ``url``."""
    for package in ("crawler", "pipelines", "archive"):
        shutil.copytree(REPO / package, project / package, ignore=shutil.ignore_patterns("__pycache__"))
    (project / "scrapy.cfg").write_text(
        f"[settings]\ndefault = crawler.settings\n\n[deploy]\nurl = {url}\nproject = postarc\n")
    run = subprocess.run([str(BIN / "scrapyd-deploy"), "--version", "1"], cwd=project,
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0 and json.loads(run.stdout)["status"] == "ok", run.stdout + run.stderr


def schedule(url: str, *settings: str, sources: Path) -> str:
    """Schedule the feeds spider; returns the job id."""
    job = call(url + "schedule.json", [("project", "postarc"), ("spider", "feeds"), ("sources", str(sources)),
                                       *[("setting", s) for s in settings]])
    assert job["status"] == "ok", job
    return job["jobid"]


def wait_for(url: str, jobid: str) -> str:
    """Wait until the job is finished; returns its log."""
    for _ in range(600):
        jobs = call(url + "listjobs.json?project=postarc")
        if any(j["id"] == jobid for j in jobs["finished"]):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"job {jobid} did not finish: {jobs}")
    with urllib.request.urlopen(f"{url}logs/postarc/feeds/{jobid}.log", timeout=30) as response:
        return response.read().decode("utf-8", "replace")


def test_deployed_feeds_spider_archives_through_scrapyd(scrapyd: str, demo_site: SiteServer, demo_sources: Path,
                                                        tmp_path: Path):
    assert "feeds" in call(scrapyd + "listspiders.json?project=postarc")["spiders"]
    archive = tmp_path / "data"
    log = wait_for(scrapyd, schedule(scrapyd, f"POSTARC_ARCHIVE_DIR={archive}", sources=demo_sources))
    assert "Spider closed (finished)" in log, log[-3000:]
    assert len(posts_of(archive)) == 5
    warcio_check(archive)
    assert (archive / "state.sqlite").exists() and (archive / "indexes" / "index.cdxj").exists()


def test_scrapyd_jobs_share_a_crawl_through_redis(scrapyd: str, redis_url: str, tmp_path: Path):  # noqa: F811
    """Two jobs with ``setting=REDIS_URL=…`` (as two Scrapyd hosts would run them) are two
    workers of one crawl: every post once, every article fetched once."""
    archive = tmp_path / "data"
    with SiteServer() as site:
        site.routes.update(aggregator(site.base, page_delay=0.3))
        sources = sources_file(tmp_path, site.base)
        settings = (f"POSTARC_ARCHIVE_DIR={archive}", f"REDIS_URL={redis_url}")
        jobs = [schedule(scrapyd, *settings, sources=sources) for _ in range(2)]
        logs = [wait_for(scrapyd, job) for job in jobs]
    for log in logs:
        assert "Spider closed (finished)" in log, log[-3000:]
    assert sorted(fetched(site, "/post/").values()) == [1] * (POSTS - 1)  # one link is dead
    assert_archived_once(archive, redis_url)
    warcio_check(archive)
