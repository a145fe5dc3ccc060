"""RunRecorder: writes each crawl run into ``state.sqlite`` (``archive.runs``) for rebuilds.

Recorded per run: the spider and what it needs to run again (the sources file's text, the
URLs of ``postarc archive``), every ``POSTARC_*`` setting plus the few Scrapy settings that
decide what gets fetched, and the WARC files the run wrote (each post's catalogue row names
the file of its capture, which ties the post to its run). ``postarc reextract`` rebuilds
posts with the options they were written with.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy import signals

from archive.runs import finish_run, start_run
from crawler.capture import WarcCapture

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from typing_extensions import Self

logger = logging.getLogger(__name__)

#: Settings besides POSTARC_* that change what a run fetched, hence what it wrote.
FETCH_SETTINGS = ("USER_AGENT", "ROBOTSTXT_OBEY", "MEDIA_ALLOW_REDIRECTS", "DOWNLOAD_MAXSIZE")
#: Settings that belong to the process, not to what was written: never recorded.
LOCAL_SETTINGS = {"POSTARC_ARCHIVE_DIR"}
#: Spider attributes that are its arguments, per spider (the feeds spider's file is kept as text).
SPIDER_ARGUMENTS = {"feeds": ("only",), "url": ("urls", "categories", "limit", "follow_links", "timezone")}


def recorded_settings(settings: Any) -> dict[str, Any]:
    names = [n for n in settings if n.startswith("POSTARC_") and n not in LOCAL_SETTINGS]
    return {name: settings[name] for name in sorted(names) + list(FETCH_SETTINGS) if name in settings}


class RunRecorder:
    """Records a run when its spider opens, completes the record when it closes."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.state_db = Path(crawler.settings["POSTARC_ARCHIVE_DIR"]) / "state.sqlite"
        self.run_id: int | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        recorder = cls(crawler)
        crawler.signals.connect(recorder.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(recorder.spider_closed, signal=signals.spider_closed)
        return recorder

    def spider_opened(self, spider: Spider) -> None:
        arguments = {name: getattr(spider, name) for name in SPIDER_ARGUMENTS.get(spider.name, ())
                     if hasattr(spider, name)}
        sources = None
        sources_path = getattr(spider, "sources", None)
        if isinstance(sources_path, str):
            try:
                sources = Path(sources_path).read_text(encoding="utf-8")
            except OSError as exc:
                logger.warning("run record: cannot read the sources file %s: %s", sources_path, exc)
        self.state_db.parent.mkdir(parents=True, exist_ok=True)
        self.run_id = start_run(self.state_db, spider.name, arguments, sources,
                                recorded_settings(self.crawler.settings))

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self.run_id is not None:
            finish_run(self.state_db, self.run_id, reason, self.warc_files())

    def warc_files(self) -> list[str]:
        """The WARC files this run wrote: they say which posts it made (``Post.capture``)."""
        capture = self.crawler.get_extension(WarcCapture)
        return capture.files_written() if capture is not None else []
