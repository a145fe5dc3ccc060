"""Hexo reads every post as written: front matter, dates, categories, body, local images.

Uses Hexo itself (tests/hexo, installed by ``npm ci`` in .ci/run) to load the posts.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from crawler.demo.server import SiteServer
from tests.conftest import needs_tool
from tests.helpers import hexo_installed, hexo_load, postarc, posts_of

pytestmark = needs_tool("Hexo's node modules in tests/hexo (tests/install-tools: npm ci --prefix tests/hexo)", hexo_installed())


@pytest.mark.parametrize("options", [[], ["--body", "html", "--date-format", "rfc1123"]],
                         ids=["markdown-iso", "seed-form"])
def test_hexo_loads_every_post(demo_sources: Path, demo_site: SiteServer, tmp_path: Path, options: list[str]):
    archive = tmp_path / "data"
    run = postarc("crawl", "--sources", str(demo_sources), "--archive", str(archive), *options)
    assert run.returncode == 0, run.stderr[-2000:]
    ours = {Path(rel).stem: fm for rel, (fm, _body) in posts_of(archive).items()}
    loaded = hexo_load(archive / "posts", tmp_path / "site")
    assert len(loaded) == len(ours) == 5
    for post in loaded:
        fm = ours[Path(post["source"]).stem]
        assert post["title"] == fm["title"]
        expected = fm["date"] if isinstance(fm["date"], datetime) else datetime.strptime(
            fm["date"], "%a, %d %b %Y %H:%M:%S GMT")
        assert post["date"][:19] == expected.strftime("%Y-%m-%dT%H:%M:%S")
        assert post["categories"] == fm["categories"]
        assert post["content_length"] > 50 and post["has_images"]
