"""The real aggregator posts of shared/corpus, archived end to end and measured (bench.fidelity).

13 sources, 43 posts, article pages wrapped in boilerplate, some served in legacy charsets (GBK,
GB18030 labelled GB2312, Big5, undeclared), some feeds in GBK, some feeds carrying only a summary,
some links dead, images on another origin behind lazy-loading markup and hotlink protection.
Skipped where the corpus folder is absent (set POSTARC_CORPUS).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.fidelity import run
from tests.conftest import needs_tool
from tests.helpers import REPO, hexo_installed, hexo_load, warcio_check

CORPUS = Path(os.environ.get("POSTARC_CORPUS", REPO.parent / "shared" / "corpus"))
pytestmark = needs_tool(f"the shared corpus at {CORPUS} (POSTARC_CORPUS)", (CORPUS / "posts").is_dir())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("corpus")
    figures = run(CORPUS, workdir, charset_every=4, dead_every=7, summary_every=5, gbk_feed_every=3, hotlink=True)
    return figures, workdir / "data"


def test_every_post_archived_with_title_and_utc_date(report):
    figures, _archive = report
    overall = figures["overall"]
    assert figures["exit_code"] == 0, figures["stderr_tail"]
    assert overall["written"] == overall["posts"] == 43
    assert overall["titles_ok"] == overall["dates_ok"] == 43


def test_paragraphs_and_images_kept(report):
    overall = report[0]["overall"]
    assert overall["paragraph_recall_mean"] >= 0.99
    assert overall["paragraph_recall_min"] >= 0.85  # a summary feed's post, rebuilt from its page
    assert overall["image_recall_local"] >= 0.98
    assert overall["image_recall_warc"] >= 0.98


def test_no_mojibake_and_no_page_boilerplate(report):
    figures = report[0]
    assert figures["overall"]["posts_with_mojibake"] == 0
    assert figures["overall"]["posts_with_boilerplate"] == 0
    assert len(figures["conditions"]["pages_by_charset"]) > 4  # the legacy charsets were all served


def test_summary_feeds_replaced_by_their_page_and_full_feeds_kept(report):
    conditions = report[0]["conditions"]
    assert conditions["summary_feeds"] > 0
    assert conditions["summary_feeds_replaced_by_page"] == conditions["summary_feeds"]
    assert conditions["full_feeds_replaced_by_page"] == 0
    assert conditions["page_body_recall_mean"] >= 0.95
    assert conditions["dead_link_posts_written"] == conditions["dead_links"] > 0


def test_hotlink_protected_images_refused_then_fetched_without_referer(report):
    conditions = report[0]["conditions"]
    assert conditions["hotlink_protected_images"] > 0
    assert conditions["hotlink_403_then_200"] == conditions["hotlink_403"] == conditions["hotlink_protected_images"]


def test_warc_files_valid_and_closed(report):
    figures, archive = report
    assert figures["open_files"] == 0
    warcio_check(archive)


@needs_tool("Hexo's node modules in tests/hexo (tests/install-tools: npm ci --prefix tests/hexo)", hexo_installed())
def test_hexo_reads_every_post(report, tmp_path: Path):
    _figures, archive = report
    loaded = hexo_load(archive / "posts", tmp_path / "site")
    assert len(loaded) == 43
    assert all(p["title"] and p["content_length"] > 100 for p in loaded)
