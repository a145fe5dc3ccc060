"""A live progress line on a terminal: feeds done, posts new/updated/unchanged, bytes.

Enabled by ``POSTARC_PROGRESS`` (``postarc crawl`` turns it on when stderr is a TTY); it reads
the crawl's ledger (``crawler.ledger``), so it knows nothing the summary table does not.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.asyncio import create_looping_call

from crawler.ledger import BYTES, MERGED, NEW, UNCHANGED, UPDATED, SourceLedger, ledger_of
from crawler.protocol import STARTED

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.utils.asyncio import AsyncioLoopingCall
    from twisted.internet.task import LoopingCall
    from typing_extensions import Self

INTERVAL = 0.5  # seconds between redraws


def source_totals(ledger: SourceLedger) -> dict[str, int]:
    """The ledger's per-source figures summed over all sources."""
    statuses = ledger.statuses().values()
    return {"feeds": len(statuses), "feeds_done": sum(status != STARTED for status in statuses),
            **{what: ledger.total(what) for what in (NEW, UPDATED, UNCHANGED, MERGED, BYTES)}}


def totals_line(t: dict[str, int]) -> str:
    """The progress line's figures (``source_totals``, or their sum over ``--processes`` children)."""
    return (f"feeds {t.get('feeds_done', 0)}/{t.get('feeds', 0)}  new {t.get('new', 0)}  "
            f"updated {t.get('updated', 0)}  unchanged {t.get('unchanged', 0)}  merged {t.get(MERGED, 0)}  "
            f"{human_bytes(t.get('bytes', 0))}")


def human_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class Progress:
    def __init__(self, crawler: Crawler, out: TextIO) -> None:
        self.crawler = crawler
        self.out = out
        self.loop: AsyncioLoopingCall | LoopingCall | None = None
        self.totals_file: str | None = None  # POSTARC_PROGRESS_FILE: totals as JSON there, not a line
        crawler.signals.connect(self.start, signal=signals.spider_opened)
        crawler.signals.connect(self.stop, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if not crawler.settings.getbool("POSTARC_PROGRESS"):
            raise NotConfigured
        progress = cls(crawler, sys.stderr)
        progress.totals_file = crawler.settings.get("POSTARC_PROGRESS_FILE")
        return progress

    def start(self) -> None:
        self.loop = create_looping_call(self.draw)
        self.loop.start(INTERVAL)

    def draw(self) -> None:
        t = source_totals(ledger_of(self.crawler))
        engine = self.crawler.engine
        active = len(engine.downloader.active) if engine else 0
        if self.totals_file:  # a child of `crawl --processes`: its parent draws one line for all
            tmp = Path(self.totals_file + ".tmp")
            tmp.write_text(json.dumps({**t, "active": active}))
            os.replace(tmp, self.totals_file)
            return
        self.out.write(f"\r\033[K{totals_line(t)}  ({active} downloading)")
        self.out.flush()

    def stop(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.totals_file:
            return
        self.out.write("\r\033[K")
        self.out.flush()
