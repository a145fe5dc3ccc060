"""scrapy-redis's scheduler, per run and with leases.

scrapy-redis 0.9.1 on Scrapy 2.19: its scheduler passes ``spider=`` to the stats collector on
every request (deprecated in 2.19, a warning each time) and keys the duplicate filter per
spider for ever (with ``SCHEDULER_PERSIST``, which several workers need, no run would fetch a
feed twice); ``SharedScheduler`` overrides exactly ``open``, ``enqueue_request`` and
``next_request`` for that and for leases. The rest (queue, serializer, dupefilter) is used as is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

from crawler.protocol import LEASE_META, WAKE_META
from crawler.shared.frontier import Frontier

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from typing_extensions import Self

    from crawler.shared.queue import LeaseQueue


class SharedScheduler(Scheduler):
    """scrapy-redis's scheduler, per run and with leases (see the module docstring)."""

    queue: LeaseQueue

    frontier: Frontier

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        scheduler = super().from_crawler(crawler)
        frontier = crawler.get_extension(Frontier)
        if frontier is None:
            raise NotConfigured("SharedScheduler needs the crawler.shared.frontier.Frontier extension")
        scheduler.frontier = frontier
        return scheduler

    def open(self, spider: Spider) -> None:
        self.woken: list[Request] = []  # taken by Frontier.wake, handed back through engine.crawl
        run = self.frontier.join(spider, self.queue_key % {"spider": spider.name})
        assert self.frontier.keys is not None
        self.df = load_object(self.dupefilter_cls)(
            self.server, key=self.frontier.keys.dupefilter(run), debug=spider.settings.getbool("DUPEFILTER_DEBUG"))
        super().open(spider)
        self.queue.lease_key = self.frontier.keys.leases(self.frontier.worker)
        self.frontier.queue = self.queue

    def has_pending_requests(self) -> bool:
        return bool(self.woken) or super().has_pending_requests()

    def enqueue_request(self, request: Request) -> bool:
        if request.meta.pop(WAKE_META, False):
            self.woken.append(request)  # already taken from the queue, and leased
            return True
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        return True

    def next_request(self) -> Request | None:
        request = self.woken.pop() if self.woken else self.queue.pop()
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
            self.frontier.leased(request.meta[LEASE_META])
        return request
