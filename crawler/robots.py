"""Scrapy's ``RobotsTxtMiddleware`` with every waiting request getting the host's rules.

Since Scrapy's robots middleware became ``async`` (2.19 included), the requests that arrive
while a host's robots.txt is being fetched all await one shared ``Deferred``; the first
waiter's callback returns ``None`` down the chain, so the second and later waiters get "no
robots.txt" and are let through even where robots.txt disallows them. With three or more URLs
of one host at once (``postarc archive``, the article pages of one feed) disallowed pages were
fetched. Here each waiter chains a ``Deferred`` of its own that passes the result on.

A robots.txt that cannot be fetched (refused, timeout…) means no rules, as in Scrapy; it is one
warning line in the failure vocabulary here, where Scrapy logs a traceback for it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import Request
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.exceptions import IgnoreRequest
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

from crawler.failures import describe

if TYPE_CHECKING:
    from scrapy.robotstxt import RobotParser

logger = logging.getLogger(__name__)


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    async def robot_parser(self, request: Request) -> RobotParser | None:
        url = urlparse_cached(request)
        if url.netloc not in self._parsers:
            await self._fetch(request, url.scheme, url.netloc)
        pending = self._parsers[url.netloc]
        if not isinstance(pending, Deferred):
            return pending
        mine: Deferred[RobotParser | None] = Deferred()

        def relay(result: RobotParser | None) -> RobotParser | None:
            mine.callback(result)
            return result  # the next waiter gets the rules too

        pending.addCallback(relay)
        return await maybe_deferred_to_future(mine)

    async def _fetch(self, request: Request, scheme: str, netloc: str) -> None:
        """Scrapy's fetch of a host's robots.txt, its failure logged as one line."""
        self._parsers[netloc] = Deferred()
        robots = Request(f"{scheme}://{netloc}/robots.txt", priority=self.DOWNLOAD_PRIORITY,
                         meta={"dont_obey_robotstxt": True}, callback=NO_CALLBACK)
        try:
            response = await self.crawler.engine.download_async(robots)
            await self._parse_robots(response, netloc, request)
        except Exception as exc:  # noqa: BLE001 - any failure means "no rules", as in Scrapy
            if not isinstance(exc, IgnoreRequest):
                logger.warning("robots.txt of %s failed (%s); fetching as if it had none", netloc, describe(exc))
            self._robots_error(exc, netloc)
        self._stats.inc_value("robotstxt/request_count")
