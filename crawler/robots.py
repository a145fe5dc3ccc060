"""Scrapy's ``RobotsTxtMiddleware`` with every waiting request getting the host's rules.

Scrapy 2.19's middleware (async since scrapy/scrapy#6802) has the requests that arrive while a
host's robots.txt is being fetched all await one shared ``Deferred``; the first waiter's
callback returns ``None`` down the chain, so the second and later waiters get "no robots.txt"
and are let through even where robots.txt disallows them. With three or more URLs of one host
at once (``postarc archive``, the article pages of one feed) disallowed pages were fetched.
#6802 removed the per-waiter ``Deferred`` that passed the result on; ``robot_parser`` below
puts exactly that back, and is the only code here that reads Scrapy's private ``_parsers``.
Drop this module once Scrapy's own middleware relays the result again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware as ScrapyRobotsTxtMiddleware
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.robotstxt import RobotParser


class RobotsTxtMiddleware(ScrapyRobotsTxtMiddleware):
    async def robot_parser(self, request: Request) -> RobotParser | None:
        # Scrapy 2.19's robot_parser, its waiting branch as it was before scrapy/scrapy#6802.
        pending = self._parsers.get(urlparse_cached(request).netloc)
        if not isinstance(pending, Deferred):
            return await super().robot_parser(request)
        mine: Deferred[RobotParser | None] = Deferred()

        def relay(result: RobotParser | None) -> RobotParser | None:
            mine.callback(result)
            return result  # the next waiter gets the rules too

        pending.addCallback(relay)
        return await maybe_deferred_to_future(mine)
