"""What readers see: every post's Markdown renders as its source reads in a browser.

The text a browser shows of the source HTML (tests.roundtrip.shown_blocks: an HTML5 parse, block
by block) must equal what marked shows of the Markdown postarc writes (run in Node as Hexo runs it:
hexo-renderer-marked at its defaults, GFM, breaks, autolinks, smartypants) and what markdown-it
shows (CommonMark, as ``postarc replay`` renders posts), whitespace and smartypants' quotes and
dashes folded; and no Markdown syntax may show as text. For every post of shared/corpus, for the
cases issue 17 lists, and for generated HTML.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive.extract import choose_body
from archive.html import text_blocks
from archive.markdown import render_body
from bench.corpus import load_corpus
from tests.conftest import require_tool
from tests.helpers import REPO, hexo_installed
from tests.roundtrip import Renderers, differences, fold, shown_blocks
from tests.tools import chromium_driver

CORPUS = Path(os.environ.get("POSTARC_CORPUS", REPO.parent / "shared" / "corpus"))
URL = "http://127.0.0.1:8000/post/1"


@pytest.fixture(scope="module")
def renderers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Renderers]:
    require_tool("Hexo (npm ci --prefix tests/hexo, as tests/install-tools does) or node", hexo_installed())
    running = Renderers(tmp_path_factory.mktemp("hexo") / "site")
    yield running
    running.close()


def markdown_of(html: str) -> str:
    """What the worker pool writes for a feed body."""
    return render_body(choose_body(html, URL).html, "markdown", {})


def read_wrong(renderers: Renderers, sources: list[str]) -> list[str]:
    """Every way a reader of marked or markdown-it sees something else than the source shows."""
    markdowns = [markdown_of(html) for html in sources]
    wrong = []
    for name, rendered in (("marked", renderers.marked(markdowns)), ("markdown-it", renderers.markdown_it(markdowns))):
        for i, (html, markdown, out) in enumerate(zip(sources, markdowns, rendered)):
            wrong += [f"{name}, source {i} ({html[:60]!r}): {problem}" for problem in differences(html, markdown, out)]
    return wrong


def test_every_corpus_post_reads_as_its_source(renderers: Renderers) -> None:
    require_tool(f"the corpus at {CORPUS} (set POSTARC_CORPUS)", (CORPUS / "posts").is_dir())
    posts = load_corpus(CORPUS)
    assert len(posts) >= 40
    assert read_wrong(renderers, [post.html for post in posts]) == []


CASES = [
    # HTML as browsers parse it
    "<p>if a < b and b > c</p>", "<p>List<String> names</p>", "<p>x << y</p>", "<p>a</p></p><p>b</p>",
    "<p>one<p>two</p></p>", "<div><b>bold<i>both</div>after", "<p>nul\x00 and\x01 control\x1f chars</p>",
    "<pre>new ProducerRecord<>(topic, \"k\", \"v\");\nMap<K, List<V>> m;</pre>", "<p>a &lt;b&gt; c &amp;copy; d</p>",
    # emphasis the flanking rules cannot express
    "<p><strong>漏洞。</strong>据悉，<b>“引号”</b>之后</p>", "<p>END<strong>·</strong>END</p>",
    "<p><b>1997</b><b>Medientechnik-Studium</b></p>", "<p><em>NDR</em><b>-Recherchen</b></p>",
    "<p>a<strong> spaced </strong>b<em>(x)</em>c</p>", "<p><b>bold<br></b>- after a break</p>",
    "<p><b><i>both</i></b> and <i><b>again</b></i></p>", "<p>x<del>gone</del>y <s>~tilde~</s></p>",
    "<p><span>word<em>漏洞。</em></span><span><em>“引号”</em></span></p>",  # emphasis at a span's edge (hypothesis)
    # text that reads as block syntax
    "<p>- not a list</p><p>1. not a list</p><p>+ plus</p><p># no heading</p><p>&gt; no quote</p>",
    "<p>===</p><p>---</p><p>***</p><p>    four spaces</p><p>```</p><p>~~~</p><p>2021) year</p>",
    "<div>loose<br>- dash line<br>1) item<br># hash</div>", "<li>- in a list</li>",
    # autolinks and escapes
    "<p>see https://x.kxcdn[.]com/upgrade_service_upgrade.zip的文件</p>",
    "<p>www.example.com/a_b_c and mail me at first_last@example.com.</p>",
    "<p>https://www.theregister.com/2021/05/11/turing_machine_0day/</p>",
    # whitespace at the edges of inline elements
    '<p>Auf der <a href="http://x/">Homepage </a>nachlesen</p>', "<p><a href='http://x/'> lead</a>trail</p>",
    # tables
    "<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td><td>3</td></tr></table>",
    "<table><tr><td colspan=2>wide</td></tr><tr><td>a|b</td><td><ul><li>x</li><li>y</li></ul></td></tr></table>",
    "<table><tr><th>h</th></tr><tr><td>line<br>two</td></tr><tr><td>`tick`</td></tr></table>",
    # code spans, hard breaks, lists, headings
    "<p>run <code>a `b` c</code> and <code>``</code> and <code> x </code></p>",
    "<p><code><img src='http://i.example/a.png'> in code</code></p>",
    "<p>line one<br>line two<br><br>new paragraph</p>",
    "<ul><li>one<ul><li>one.a<ol><li>deep</li></ol></li></ul></li><li><h3>heading in item</h3>text</li></ul>",
    "<h2>title #</h2><h3>a<br>b</h3><dl><dt>term</dt><dd>definition</dd></dl>",
]


def test_issue_cases_read_as_their_source(renderers: Renderers) -> None:
    assert read_wrong(renderers, CASES) == []


# Each source in a <div> of its own, all at once; read once <object> fallbacks have settled.
SHOW = """const [sources, done] = arguments;
const boxes = sources.map(html => { const box = document.createElement("div"); box.innerHTML = html;
  box.querySelectorAll("button, input, select, textarea").forEach(e => e.remove());
  document.body.append(box); return box; });
setTimeout(() => done(boxes.map(box => box.innerText)), 500);"""


def test_shown_blocks_is_what_chromium_shows() -> None:
    """The oracle itself, calibrated: its text is Chromium's innerText of the same HTML (set as a
    standards-mode page's body; every request blocked, so no image is fetched).
    Form controls are left out on both sides: postarc drops them (a post's "赞赏" button is not
    its text)."""
    sources = CASES + ([post.html for post in load_corpus(CORPUS)] if (CORPUS / "posts").is_dir() else [])
    with chromium_driver() as driver:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*"]})
        driver.get("data:text/html,<!doctype html><title>t</title><body></body>")
        shown = driver.execute_async_script(SHOW, sources)
    assert [fold(text) for text in shown] == [" ".join(shown_blocks(html)) for html in sources]


def test_html_is_parsed_as_a_browser_parses_it() -> None:
    assert text_blocks("<p>if a < b and b > c</p>") == ["if a < b and b > c"]
    assert text_blocks("<pre>new ProducerRecord<>(t);</pre>") == ["new ProducerRecord<>(t);"]
    assert text_blocks("<p>List<String> names</p>") == ["List names"]  # <string> is a tag to a browser
    assert text_blocks("<p>one<p>two</p></p>three") == ["one", "two", "three"]
    assert text_blocks("a\x00b\x01c&#1;d") == ["abcd"]
    assert shown_blocks("<div><b>bold<i>both</div>after") == text_blocks("<div><b>bold<i>both</div>after")


# --- generated HTML ------------------------------------------------------------------------------

WORDS = st.sampled_from([
    "word", "漏洞。", "据悉", "“引号”", "·", "(x)", "a_b", "*", "_", "**", "[x]", "](y)", "<b>", "a < b", "&amp;",
    "#", "- ", "1. ", "+ ", "> ", "===", "`", "``", "~", "\\", "|", "https://x.example/a_b", "www.x.example",
    "me@x.example", "END", "1997", "  ", " ", "\n", "'quote'", '"double"', "--", "...", "😀",
])
TEXT = st.lists(WORDS, min_size=1, max_size=4).map("".join)
INLINE = ["b", "strong", "em", "i", "code", "span", "del"]
BLOCK = ["p", "div", "blockquote", "h2", "li", "td"]


def _wrap(tag: str, inner: str) -> str:
    if tag == "a":
        return f'<a href="http://x.example/p">{inner}</a>'
    if tag == "li":
        return f"<ul><li>{inner}</li></ul>"
    if tag == "td":
        return f"<table><tr><td>{inner}</td></tr></table>"
    return f"<{tag}>{inner}</{tag}>"


INLINE_HTML = st.recursive(
    st.one_of(TEXT.map(lambda t: t.replace("<", "&lt;")), st.just("<br>"), st.just('<img src="http://i.example/1.png">')),
    lambda inner: st.one_of(st.tuples(st.sampled_from([*INLINE, "a"]), st.lists(inner, min_size=1, max_size=3))
                            .map(lambda t: _wrap(t[0], "".join(t[1])))),
    max_leaves=8)
HTML = st.lists(st.tuples(st.sampled_from(BLOCK), st.lists(INLINE_HTML, min_size=1, max_size=3)), min_size=1, max_size=3)\
    .map(lambda blocks: "".join(_wrap(tag, "".join(parts)) for tag, parts in blocks))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(html=HTML)
def test_generated_html_reads_as_its_source(renderers: Renderers, html: str) -> None:
    assert read_wrong(renderers, [html]) == []
