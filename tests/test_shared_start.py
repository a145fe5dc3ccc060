"""Workers that start at the same instant on one new archive (``postarc crawl --redis`` started
by a supervisor or by Scrapyd): none may fail on what another is creating.

Each worker is a forked process; a barrier releases them together before every step. Before
the fix each of these tests failed, every time (the SQLite ones in about one round of four).
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Callable
from pathlib import Path

from scrapy.utils.test import get_crawler

from archive.catalogue import Catalogue
from archive.replay.search import connect
from archive.runs import start_run
from pipelines.images import PostImagesPipeline

WORKERS = 4
ROUNDS = 25


def _open_catalogue(archive: Path) -> None:
    Catalogue.of_archive(archive).close()


def _start_run(archive: Path) -> None:
    archive.mkdir(exist_ok=True)  # the crawl's catalogue made it
    start_run(archive / "state.sqlite", "feeds", {}, None, {})


def _open_search(archive: Path) -> None:
    connect(archive / "search.sqlite").close()


def _open_images_store(archive: Path) -> None:
    PostImagesPipeline.from_crawler(get_crawler(settings_dict={"POSTARC_ARCHIVE_DIR": str(archive)}))


def _together(step: Callable[[Path], None], archives: list[Path], barrier, failures) -> None:
    for archive in archives:
        barrier.wait()
        try:
            step(archive)
        except (sqlite3.OperationalError, OSError) as exc:
            failures.put(repr(exc))
    failures.put(None)


def failures_of(step: Callable[[Path], None], root: Path) -> list[str]:
    ctx = multiprocessing.get_context("fork")
    barrier, failures = ctx.Barrier(WORKERS), ctx.Queue()
    archives = [root / f"archive-{n}" for n in range(ROUNDS)]
    workers = [ctx.Process(target=_together, args=(step, archives, barrier, failures)) for _ in range(WORKERS)]
    for w in workers:
        w.start()
    found, done = [], 0
    while done < WORKERS:
        item = failures.get(timeout=120)
        if item is None:
            done += 1
        else:
            found.append(item)
    for w in workers:
        w.join()
    return found


def test_catalogues_opened_together_all_open(tmp_path: Path):
    assert failures_of(_open_catalogue, tmp_path) == []


def test_runs_started_together_all_start(tmp_path: Path):
    assert failures_of(_start_run, tmp_path) == []


def test_search_indexes_opened_together_all_open(tmp_path: Path):
    assert failures_of(_open_search, tmp_path) == []


def test_image_stores_made_together_all_made(tmp_path: Path):
    assert failures_of(_open_images_store, tmp_path) == []
