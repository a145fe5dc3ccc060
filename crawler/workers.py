"""A process pool for the CPU-heavy steps (extraction, Markdown conversion).

Scrapy runs callbacks and pipelines on one reactor thread; trafilatura and markdownify hold
the GIL for tens of milliseconds per page. Running them in worker processes lets downloads go
on meanwhile and puts the second core to work. Registered as an extension so that every
pipeline of a crawl shares one pool (``crawler.get_extension(WorkerPool)``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from scrapy import signals

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self

T = TypeVar("T")


def exit_with_parent(parent: int) -> None:
    """Pool initializer: a worker whose crawl is gone (``kill -9``, a crash) exits too.

    ProcessPoolExecutor's workers otherwise wait on their call queue for ever once their parent
    has died, holding the crawl's stdout and stderr open: whoever reads those (cron, a script,
    a test) would wait for ever too. A worker's parent changes only when the parent dies.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def default_workers(processes: int = 1) -> int:
    """Workers per crawl process when ``POSTARC_EXTRACT_WORKERS`` is 0: the cores left once each
    of ``processes`` crawl processes has one for its reactor thread, shared out, at least one.

    A worker holds 50-110 MB (trafilatura, lxml, markdownify and their caches). On 2 cores one
    crawl with one worker measured as fast as with two (120 and 249 s against 109 and 135 s,
    61-65 CPU seconds against 58-72, the machine shared) for a peak of 274 MB against 382.
    """
    cores = len(os.sched_getaffinity(0))
    return max(1, (cores - processes) // processes)


class WorkerPool:
    def __init__(self, workers: int) -> None:
        self.workers = workers or default_workers()
        self._executor: ProcessPoolExecutor | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        pool = cls(crawler.settings.getint("POSTARC_EXTRACT_WORKERS"))
        crawler.signals.connect(pool.shutdown, signal=signals.engine_stopped)
        return pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker process; ``fn`` must be a module-level function."""
        if self._executor is None:
            # spawn, not fork: forking a process that runs a reactor and threads is unsafe.
            self._executor = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=exit_with_parent, initargs=(os.getpid(),))
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
