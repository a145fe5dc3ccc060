"""archive.prune: the walks select what trafilatura's XPath expressions select, element for
element, on real pages and on the edges of their regular expressions."""

from __future__ import annotations

from pathlib import Path

import lxml.html
import pytest
from lxml.etree import XPath
from trafilatura import xpaths

from archive import prune
from archive.html import parse_document
from tests.conftest import require_tool
from tests.helpers import REPO

PAGES = REPO.parent / "shared" / "pages" / "readability"

# Each side of every test of the expressions: anchors, "(?!ary)", case, ol/ul that need the
# stricter test, <list>, a nested <h1>, newlines in attributes, matches inside matches.
EDGES = """<html><body>
<div id="comments">a</div><div id="commentary">b</div><div id="Comment-x">c</div><div id="Commentary">d</div>
<div id="CommentAry">e</div><div id="xcomment">f</div><div id="dsq-comments-x"></div><div id="disqus_thread"></div>
<ul id="comol"><li>x</li></ul><ol class="comments"></ol><ol class="x post-comments"></ol><ul id="disqus_thread"></ul>
<ul id="dsq-comments"></ul><section class="article-comments"></section><details class=" comment"></details>
<list class="comment">z</list><span class="comments"></span><div class="a
comment"></div><div class="comment
x"></div><div id="Comments"><div class="comment"><div class="comment"></div></div></div>
<div class="infinite-scroll"><h1>h</h1></div><div class="infinitescroll"></div><div id="infinite--scroll"></div>
<aside id="mvp-post-add-box"><h1>x</h1></aside><section class="mvp-post-add-wrap2"><h1>y</h1></section>
<div id="infinite-scroll"><div class="mvp-post-add-box"><h1>z</h1></div></div>
<div class="x elementor-share-buttons"></div><p class="elementor-share-buttons"></p><aside class="elementor-share-buttons--x"></aside>
</body></html>"""


def _originals() -> dict[tuple[str, int], XPath]:
    return {key: XPath(walk.path, namespaces={"re": xpaths.REGEXP_NS}) for key, walk in prune.WALKS.items()}


def test_install_replaces_every_expression_this_trafilatura_writes() -> None:
    left = prune.install()
    assert left == [], f"trafilatura's {left} differ from archive.prune.WALKS: update the walks to match"
    for (name, index), walk in prune.WALKS.items():
        assert getattr(xpaths, name)[index] is walk
    assert prune.install() == []  # again: nothing to do, nothing lost


def test_walks_select_what_the_expressions_select_on_the_edges() -> None:
    tree = lxml.html.document_fromstring(EDGES)
    for key, original in _originals().items():
        expected = original(tree)
        assert prune.WALKS[key](tree) == expected, key
    comments = prune.WALKS[("REMOVE_COMMENTS_AND_LISTS_XPATH", 0)](tree)
    assert [el.get("id") or el.get("class") for el in comments] == [
        "comments", "Comment-x", "CommentAry", "dsq-comments-x", "disqus_thread", "comol", "comments",
        "x post-comments", "article-comments", "comment", "comment\nx", "Comments", "comment", "comment"]


@pytest.fixture(scope="module")
def pages() -> list[Path]:
    require_tool(f"Readability's test pages at {PAGES}", PAGES.is_dir())
    return sorted(PAGES.glob("*/source.html"))


def test_walks_select_what_the_expressions_select_on_real_pages(pages: list[Path]) -> None:
    originals = _originals()
    matched = 0
    for path in pages:
        tree = parse_document(path.read_bytes().decode("utf-8", "replace"))
        for key, original in originals.items():
            expected = original(tree)
            assert prune.WALKS[key](tree) == expected, (path.parent.name, key)
            matched += len(expected)
    assert matched > 50  # the pages have comment sections: the comparison is not of empty lists
