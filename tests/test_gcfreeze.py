"""GcFreeze: what exists when the engine starts is frozen out of the garbage collector."""

from __future__ import annotations

import gc
import weakref

from scrapy import signals
from scrapy.utils.test import get_crawler

from crawler.gcfreeze import GcFreeze
from crawler.settings import EXTENSIONS


class _Node:
    pass


def test_the_project_settings_enable_it() -> None:
    assert "crawler.gcfreeze.GcFreeze" in EXTENSIONS


def test_engine_started_freezes_what_exists_and_collects_garbage_first() -> None:
    crawler = get_crawler(settings_dict={"EXTENSIONS": {GcFreeze: 0}})
    crawler._apply_settings()
    kept = [_Node()]  # alive when the engine starts: frozen, in no generation any more
    cycle = _Node()
    cycle.me = cycle  # garbage by then: collected first, not frozen for the rest of the crawl
    gone = weakref.ref(cycle)
    del cycle
    gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())
    try:
        crawler.signals.send_catch_log(signals.engine_started)
        assert gone() is None
        assert not any(o is kept for o in gc.get_objects())
    finally:
        gc.unfreeze()
