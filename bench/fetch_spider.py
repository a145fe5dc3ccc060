"""Plain Scrapy fetching a list of URLs: the benchmark's measure of what fetching alone costs.

``python -m bench.fetch_spider URLS_FILE [NAME=VALUE…]`` runs the project's settings (same concurrency,
throttling, robots.txt, retries) with every postarc component taken out: no WARC capture,
no wire-recording download handler, no item pipelines, no worker pool. The callback does nothing, so the run's
wall and CPU time are Scrapy's own cost of fetching those URLs. The last line of stdout is
a JSON object of the crawl's response counts.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.http import Response
from scrapy.utils.project import get_project_settings


class FetchSpider(scrapy.Spider):
    name = "bench-fetch"
    # The project's components off (its wire-recording download handler too); Scrapy's own
    # (robots.txt, retry, compression, AutoThrottle…) stay.
    custom_settings = {"ITEM_PIPELINES": {}, "DOWNLOADER_MIDDLEWARES": {}, "SPIDER_MIDDLEWARES": {},
                       "EXTENSIONS": {}, "DOWNLOAD_HANDLERS": {}, "LOG_LEVEL": "WARNING"}
    urls: str  # -a urls=FILE: one URL a line

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in Path(self.urls).read_text(encoding="utf-8").split():
            yield scrapy.Request(url, callback=self.fetched)

    def fetched(self, response: Response) -> None:
        self.crawler.stats.inc_value(f"bench/status/{response.status}")


def main(argv: list[str]) -> None:
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    settings = get_project_settings()
    for pair in argv[1:]:
        name, _, value = pair.partition("=")
        settings.set(name, value, priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(FetchSpider)
    process.crawl(crawler, urls=argv[0])
    process.start()
    stats: dict[str, Any] = crawler.stats.get_stats()
    print(json.dumps({k: v for k, v in stats.items() if k.startswith(("bench/", "downloader/response_count",
                                                                       "downloader/request_count"))}))


if __name__ == "__main__":
    main(sys.argv[1:])
