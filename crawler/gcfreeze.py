"""Startup objects out of the garbage collector's sight: ``GcFreeze``."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

from scrapy import signals

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from typing_extensions import Self


class GcFreeze:
    """Once the engine has started, ``gc.freeze()`` what exists: the modules, classes and
    components of the start-up are never garbage, yet every full collection of a long crawl
    walked them again."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        ext = cls()
        crawler.signals.connect(ext.engine_started, signal=signals.engine_started)
        return ext

    def engine_started(self) -> None:
        gc.collect()
        gc.freeze()
