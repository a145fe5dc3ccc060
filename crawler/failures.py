"""Which failures of a fetch a later run may not meet, as Scrapy's own retry settings say."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings
    from twisted.python.failure import Failure


class Transient:
    """Which failures a later run may not meet: those Scrapy's ``RetryMiddleware`` retries
    (``RETRY_HTTP_CODES``: 5xx, 408, 429; ``RETRY_EXCEPTIONS``: timeouts, refused and lost
    connections, DNS). A 404, a robots.txt ban or a body over ``DOWNLOAD_MAXSIZE`` will be the
    same next time."""

    def __init__(self, settings: BaseSettings) -> None:
        self.codes = frozenset(int(code) for code in settings.getlist("RETRY_HTTP_CODES"))
        self.exceptions = tuple(load_object(e) if isinstance(e, str) else e
                                for e in settings.getlist("RETRY_EXCEPTIONS"))

    def status(self, status: int) -> bool:
        return status in self.codes

    def failure(self, failure: Failure) -> bool:
        response = getattr(failure.value, "response", None)
        if response is not None:  # HttpError
            return self.status(response.status)
        return isinstance(failure.value, self.exceptions)
