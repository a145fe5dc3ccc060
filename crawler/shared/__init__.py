"""Several worker processes, one crawl: the crawl shared through Redis (``REDIS_URL``).

scrapy-redis gives the shared request queue and duplicate filter; a crawl that many workers
start and stop on their own also needs to know when it is over, who fetches which feed, and
what a dead worker was doing. The modules follow scrapy-redis's own layout:

- ``scripts``: the Redis key schema of the frontier and the Lua scripts that change it;
- ``frontier``: the ``Frontier`` extension, this worker's part in the run (heartbeat, leases,
  idle, end);
- ``queue`` and ``scheduler``: scrapy-redis's queue and scheduler, with leases and per run;
- ``middlewares``: the spider and downloader middlewares that claim feeds and end leases.

This package's ``__init__`` holds only what a crawl that is *not* shared needs too (``is_shared``,
the ``SharedCrawl`` add-on): it imports neither redis nor scrapy-redis, an optional extra
(``pip install 'postarc[redis]'``).

- **Runs.** A worker that finds no run starts one; workers started while it lasts join it.
  The last worker to leave with the queue empty ends it and drops its duplicate filter, so the
  next run fetches the feeds again. A run left by dead workers is resumed by the next worker.
- **Feeds.** Every worker reads the sources file; a feed request goes out only from the worker
  that adds its source to ``B:feeds:<run>`` first. The source name is claimed, not the URL:
  two sources may share a feed URL (as they may without Redis, where feed requests are not
  filtered either).
- **Leases.** Taking a request from the queue records it in the worker's lease hash in the
  same Redis script, and the lease is dropped once the request is answered and every post it
  yielded has left the pipelines (or a retry/redirect took its place in the queue). A worker
  whose heartbeat (``P:alive:<worker>``) expires is dead: any other worker — or the next one to
  start — puts its leased requests back in the queue.
- **Idle.** A worker with nothing to do stays up while the queue has requests or another live
  worker holds leases or is still starting: what they yield may be for it. Scrapy's engine
  looks at its scheduler again only on its 5-second heartbeat; a waiting worker looks at the
  queue every second, and hands what it finds to the engine (``engine.crawl``), which wakes it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings, Settings

#: What to install when REDIS_URL is set but scrapy-redis or redis is not.
REDIS_EXTRA = "pip install 'postarc[redis]'"
#: The extra's packages, by import name.
REDIS_MODULES = ("redis", "scrapy_redis")


def worker_id() -> str:
    """This process among the workers of a shared crawl: host and pid, as in its WARC file names."""
    return f"{socket.gethostname()}:{os.getpid()}"


def is_shared(settings: BaseSettings) -> bool:
    return bool(settings.get("REDIS_URL"))


def missing_module() -> str | None:
    """The first package of the Redis extra that is not installed, found without importing it."""
    return next((name for name in REDIS_MODULES if importlib.util.find_spec(name) is None), None)


def redis_problem(settings: BaseSettings) -> str | None:
    """Why a shared crawl cannot start (the extra not installed, a bad URL, no server), or None."""
    url = settings["REDIS_URL"]
    missing = missing_module()
    if missing:
        return f"REDIS_URL needs {missing}: {REDIS_EXTRA}"
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=5)
        client.ping()
        client.close()
    except ValueError as exc:
        return f"bad Redis URL {url!r}: {exc}"
    except redis.RedisError as exc:
        return f"cannot reach Redis at {url}: {exc}"
    return None


class SharedCrawl:
    """Add-on: with ``REDIS_URL`` set (``postarc crawl --redis URL``, ``-s``, a Scrapyd job's
    ``setting=``), this process is one worker of a crawl shared through Redis.

    It swaps in scrapy-redis's scheduler and duplicate filter (as subclassed here) and the
    components that keep the workers in step. An add-on rather than lines in ``settings.py``,
    because it must see ``REDIS_URL`` wherever it was set. Components are named by import path,
    so that this module imports none of them (nor scrapy-redis).
    """

    def update_settings(self, settings: Settings) -> None:
        if not is_shared(settings):
            return
        missing = missing_module()
        if missing:
            raise RuntimeError(f"REDIS_URL is set but {missing} is missing: {REDIS_EXTRA}")
        prefix = settings["POSTARC_REDIS_PREFIX"]
        for name, value in {
            "SCHEDULER": "crawler.shared.scheduler.SharedScheduler",
            "SCHEDULER_QUEUE_CLASS": "crawler.shared.queue.LeaseQueue",
            "SCHEDULER_QUEUE_KEY": f"{prefix}:%(spider)s:requests",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            # The queue outlives any one worker: the others, and the next run, go on with it.
            "SCHEDULER_PERSIST": True,
        }.items():
            settings.set(name, value, priority="addon")
        for setting, path, priority in (
            # After crawler.incremental.SourceState (0): on spider_closed it must run second.
            ("EXTENSIONS", "crawler.shared.frontier.Frontier", 100),
            # Closest to the engine: they see what every other middleware let through.
            ("SPIDER_MIDDLEWARES", "crawler.shared.middlewares.LeaseSpiderMiddleware", 10),
            ("DOWNLOADER_MIDDLEWARES", "crawler.shared.middlewares.LeaseDownloaderMiddleware", 10),
        ):
            components = settings.getdict(setting)
            components[path] = priority
            settings.set(setting, components, settings.getpriority(setting) or 0)
