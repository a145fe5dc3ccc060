"""``crawler.handlers.WireHTTP11DownloadHandler`` keeps what Scrapy's own handler does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from crawler.demo.server import Resource, SiteServer

# A spider of its own, in a fresh process, through the project's settings (so the project's
# handler, middlewares and WARC capture): its download_maxsize attribute is what is tested.
SPIDER = """
import json, sys
import scrapy
from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings

class Sized(scrapy.Spider):
    name = "sized"
    download_maxsize = 2000
    outcome = {}

    async def start(self):
        for url in sys.argv[2:]:
            yield scrapy.Request(url, callback=self.got, errback=self.failed, dont_filter=True)

    def got(self, response):
        Sized.outcome[response.url] = len(response.body)

    def failed(self, failure):
        Sized.outcome[failure.request.url] = type(failure.value).__name__

settings = get_project_settings()
settings.set("POSTARC_ARCHIVE_DIR", sys.argv[1])
process = CrawlerProcess(settings)
process.crawl(Sized)
process.start()
print(json.dumps(Sized.outcome))
"""


def test_a_spiders_download_maxsize_bounds_its_responses(tmp_path: Path):
    """Scrapy 2.19 still reads ``download_maxsize`` off the spider (deprecated, in favour of
    ``custom_settings``); a response over it is cancelled, whether its length is announced or not."""
    with SiteServer() as site:
        site.routes["/small.html"] = Resource(b"s" * 500)
        site.routes["/big.html"] = Resource(b"b" * 5000)
        site.routes["/big-chunked.html"] = Resource(b"c" * 5000, chunked=True)
        urls = [site.url(p) for p in ("/small.html", "/big.html", "/big-chunked.html")]
        env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "crawler.settings"}
        run = subprocess.run([sys.executable, "-c", SPIDER, str(tmp_path / "data"), *urls],
                             env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.splitlines()[-1])
    assert outcome[urls[0]] == 500
    assert outcome[urls[1]] == outcome[urls[2]] == "DownloadCancelledError"
    assert "larger than download max size (2000)" in run.stderr
