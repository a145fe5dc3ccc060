"""Politeness: a user agent that says who crawls, and retries that wait instead of hammering.

Scrapy already brings the rest (robots.txt, AutoThrottle, per-domain concurrency; see
``crawler/settings.py``). Its ``RetryMiddleware`` (2.19) re-schedules a failed request at once
and ignores ``Retry-After``; ``PoliteRetryMiddleware`` keeps its retry rules and bookkeeping
(``get_retry_request``, the ``RETRY_*`` settings, the ``retry/*`` stats) and only adds the wait.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.utils.asyncio import sleep
from scrapy.utils.response import response_status_message

if TYPE_CHECKING:
    from scrapy.http import Request, Response
    from scrapy.settings import BaseSettings, Settings

logger = logging.getLogger(__name__)

#: Statuses whose ``Retry-After`` header is a request to wait (RFC 9110 §10.2.3).
RETRY_AFTER_STATUSES = {429, 503}


def user_agent(contact_url: str) -> str:
    try:
        release = version("postarc")
    except PackageNotFoundError:  # running from a source tree that was never installed
        release = "0"
    return f"postarc/{release} (+{contact_url})" if contact_url else f"postarc/{release}"


class ContactUserAgent:
    """Add-on: ``USER_AGENT`` names postarc and ``POSTARC_CONTACT_URL``, wherever that was set.

    A value computed in ``settings.py`` would miss ``-s POSTARC_CONTACT_URL=…`` or a Scrapyd
    ``setting=``; an add-on runs once all settings are in. It sets the user agent at add-on
    priority, so a ``USER_AGENT`` given by the operator (settings, ``-s``) still wins.
    """

    def update_settings(self, settings: Settings) -> None:
        settings.set("USER_AGENT", user_agent(settings.get("POSTARC_CONTACT_URL", "")), priority="addon")


def retry_after(response: Response, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date); None if absent/bad."""
    raw = response.headers.get("Retry-After")
    if not raw:
        return None
    value = raw.decode("latin-1").strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class PoliteRetryMiddleware(RetryMiddleware):
    """Scrapy's retries, but each retry first waits.

    The wait is the server's ``Retry-After`` on 429/503, else exponential backoff
    (``POSTARC_RETRY_BACKOFF`` × 2ⁿ, at most ``POSTARC_RETRY_BACKOFF_MAX``) for 5xx and
    timeouts. A ``Retry-After`` beyond ``POSTARC_RETRY_AFTER_MAX`` is not waited out inside a
    run: the request gives up and the next scheduled run asks again. The wait holds the retried
    request only; the download slot is free meanwhile, and AutoThrottle never shortens a
    domain's delay on a non-200 response.
    """

    def __init__(self, settings: BaseSettings) -> None:
        super().__init__(settings)
        self.backoff = settings.getfloat("POSTARC_RETRY_BACKOFF")
        self.backoff_max = settings.getfloat("POSTARC_RETRY_BACKOFF_MAX")
        self.retry_after_max = settings.getfloat("POSTARC_RETRY_AFTER_MAX")

    def backoff_for(self, request: Request) -> float:
        return min(self.backoff * 2 ** request.meta.get("retry_times", 0), self.backoff_max)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if request.meta.get("dont_retry", False) or response.status not in self.retry_http_codes:
            return response
        asked = retry_after(response) if response.status in RETRY_AFTER_STATUSES else None
        if asked is not None and asked > self.retry_after_max:
            self.crawler.stats.inc_value("retry/retry_after_too_long")
            logger.warning("%s: HTTP %d asks to retry after %.0f s (more than POSTARC_RETRY_AFTER_MAX); "
                           "not retrying in this run", request.url, response.status, asked)
            return response
        retry = self._retry(request, response_status_message(response.status))
        if retry is None:
            return response
        wait = asked if asked is not None else self.backoff_for(request)
        await self._wait(request, wait, "Retry-After" if asked is not None else "backoff")
        return retry

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if not isinstance(exception, self.exceptions_to_retry) or request.meta.get("dont_retry", False):
            return None
        retry = self._retry(request, exception)
        if retry is not None:
            await self._wait(request, self.backoff_for(request), "backoff")
        return retry

    async def _wait(self, request: Request, seconds: float, why: str) -> None:
        if seconds <= 0:
            return
        logger.info("retrying %s in %.1f s (%s)", request.url, seconds, why)
        self.crawler.stats.inc_value("retry/wait_seconds", seconds)
        await sleep(seconds)
