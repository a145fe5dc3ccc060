"""archive.extract: which body holds the post (feed or article page), and what page extraction
keeps; then the same choice made by a real crawl against pages served on 127.0.0.1."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from archive.extract import _Candidate, _tei_to_html, _text_bound, choose_body, extract_page
from archive.html import clean_fragment
from archive.html import find_images, text_blocks
from archive.markdown_converter import to_markdown
from bench.corpus import CorpusPost, article_page, load_corpus, summary_html
from bench.measure import markdown_plain_text
from crawler.demo.server import Resource, SiteServer
from crawler.demo.site import png
from tests.conftest import require_tool
from tests.helpers import REPO, postarc, posts_of, write_sources

CORPUS = Path(os.environ.get("POSTARC_CORPUS", REPO.parent / "shared" / "corpus"))
URL = "http://news.example/article/1.html"

# A post as a complete feed carries it: several paragraphs, a heading, a list.
FULL = """<p>港区应急局的执法人员近日走进封闭生产的企业，检查安全生产与防疫措施的落实情况。</p>
<p>他们既是企业安全生产的检查员，也是企业防疫安全的督察员，每到一处都要核对人员与物资。</p>
<h2>不曾停歇的监管脚步</h2>
<p>只要企业生产在继续，监管就不会停下来。执法人员通过电话、视频轮巡等方式了解企业情况。</p>
<ul><li>危化品企业：8 家，全部完成现场检查。</li><li>工贸企业：13 家，发现隐患 21 处。</li></ul>
<p>对于检查中发现的问题，应急局现场责令整改，并在一周后开展“回头看”，确认整改到位。</p>
<p>下一步，应急局将继续紧抓企业的生产安全和防疫安全，为复工复产创造良好的安全环境。</p>
<p>The inspectors also published an English summary for the foreign-invested plants in the port area.</p>"""

# An article page with every kind of content, inside navigation, share buttons and comments.
RICH = """<!doctype html><html><head><meta charset="utf-8"><title>富文本测试</title>
<style>.content {{ color: red }} /* STYLE-JUNK */</style><script>var tracker = "SCRIPT-JUNK";</script></head><body>
<nav><a href="/">首页</a> | <a href="/tech">科技</a> | <a href="/login">登录</a></nav>
<article><h1>富文本测试：页面正文的每一种元素</h1>
<div class="content">
<p>第一段：归档工具需要保留正文中的每一个段落、标题、列表、表格和代码块，这是对抓取质量的基本要求。</p>
<h2>安装步骤</h2>
<p>安装之前请先确认 Python 版本不低于 3.11，并且已经创建了独立的虚拟环境，避免和系统包冲突。</p>
<ul><li>第一项：下载源码包并解压到本地目录。</li><li>第二项：运行 <code>pip install postarc</code> 完成安装。</li></ul>
<ol><li>步骤一：编写来源文件。</li><li>步骤二：执行抓取命令。</li></ol>
<table><tr><th>组件</th><th>版本</th></tr><tr><td>Scrapy</td><td>2.19</td></tr><tr><td>trafilatura</td><td>2.3</td></tr></table>
<pre>def main():<br>&nbsp;&nbsp;&nbsp;&nbsp;print("a &lt; b &amp;&amp; c")<br>&nbsp;&nbsp;&nbsp;&nbsp;return 0</pre>
<p><img class="lazy" data-original="{img}/a.png" src="{site}/static/placeholder.gif" alt="第一张"></p>
<blockquote><p>引用：好的归档工具不会丢掉任何一段文字，也不会把导航和评论当成正文。</p></blockquote>
<p><img srcset="{img}/b-small.png 480w, {img}/b.png 1080w" src="{img}/b-small.png" alt="第二张"></p>
<p><img src="{img}/pixel.gif" width="1" height="1"></p>
<script>document.write("SCRIPT-JUNK")</script>
<iframe src="{site}/ads/frame.html">IFRAME-JUNK</iframe>
<p><img src="https://cors.zfour.workers.dev/?{img}/c-picture" alt="第三张"></p>
<p>最后一段：以上内容全部来自文章页面，因为订阅源里只有一句摘要，所以必须从页面提取正文。</p>
</div>
<div class="share"><a href="/share/wx">分享到微信</a> <a href="/share/wb">分享到微博</a></div>
</article>
<section class="comments"><h3>评论 (2)</h3><p>沙发，写得不错！</p><p>请问有原文链接吗？</p></section>
<footer><p>© 2024 示例网 版权所有</p></footer></body></html>"""
RICH_SUMMARY = "<p>第一段：归档工具需要保留正文中的每一个段落、标题…</p>"
JUNK = ["SCRIPT-JUNK", "STYLE-JUNK", "IFRAME-JUNK", "首页", "分享到微信", "沙发", "请问有原文", "版权所有", "pixel.gif",
        "placeholder.gif", "b-small.png"]


def page_of(body: str, title: str = "港区应急局一直在路上") -> str:
    post = CorpusPost(key="1", title=title, author="新媒体", categories=[], date_raw="", html=body)
    return article_page(post, body, [post])


def rich(img: str = "http://img.example", site: str = "http://news.example") -> str:
    return RICH.format(img=img, site=site)


# --- body choice --------------------------------------------------------------------------


def test_summary_feed_is_replaced_by_the_page() -> None:
    body = choose_body("<p>港区应急局的执法人员近日走进封闭生产的企业…</p>", URL, page_of(FULL), URL)
    assert body.source == "page"
    assert text_blocks(FULL)[-1] in " ".join(text_blocks(body.html))


def test_complete_feed_wins_over_the_same_page() -> None:
    assert choose_body(FULL, URL, page_of(FULL), URL).source == "feed"


# trafilatura's XML (TEI) elements, and text with what cleaning and normalising change.
_TEI = st.sampled_from(["p", "head", "hi", "list", "item", "lb", "quote", "code", "ref", "table", "row", "cell",
                        "graphic", "del", "ab", "div", "span", "title", "script"])
_TEXT = st.text(st.sampled_from(["a", "文", " ", "\n", "\xa0", "\u3000", "&", "<", "x"]), max_size=8)


@st.composite
def _tei(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    el = etree.Element(draw(_TEI), rend=draw(st.sampled_from(["", "#b", "ol", "h2"])))
    el.text = draw(_TEXT)
    el.tail = draw(_TEXT)
    if depth < 3:
        el.extend(draw(st.lists(_tei(depth + 1), max_size=4)))
    return el


@settings(max_examples=300, deadline=None)
@given(children=st.lists(_tei(), max_size=5), text=_TEXT)
def test_the_page_text_bound_holds(children: list[etree._Element], text: str) -> None:
    """``choose_body`` leaves the page's fragment uncleaned when the feed is long against a
    bound of its text: the bound must never be below the text cleaning leaves."""
    main = etree.Element("main")
    main.text = text
    main.extend(children)
    bound = _text_bound(main)
    cleaned = _Candidate(clean_fragment(_tei_to_html(main), URL, {}), "page")
    assert bound >= len(cleaned.text)


def test_a_feed_beside_a_page_of_raw_text_elements_is_still_compared() -> None:
    """Markup inside an element HTML reads as raw text becomes text when cleaned: no bound."""
    main = etree.fromstring("<main><p>short</p><title>&lt;p&gt;x&lt;/p&gt;</title></main>")
    assert _text_bound(main) == float("inf")


def test_boilerplate_only_page_never_replaces_the_feed() -> None:
    assert choose_body(FULL, URL, page_of(""), URL).source == "feed"
    assert choose_body(FULL, URL, "<html><body><nav>首页</nav><div class='comments'><p>沙发</p></div></body></html>",
                       URL).source == "feed"


def test_truncated_page_never_replaces_the_feed() -> None:
    assert choose_body(FULL, URL, page_of(FULL[: len(FULL) // 2]), URL).source == "feed"


def test_short_complete_feed_kept_against_a_long_page_about_something_else() -> None:
    short = "<p>今天下午三点，港区举行了安全生产培训，共有两百人参加。</p>"
    assert choose_body(short, URL, page_of(FULL), URL).source == "feed"


def test_photo_feed_replaced_only_by_a_page_with_its_pictures() -> None:
    photos = '<p><img src="http://img.example/1.jpg"></p><p><img src="http://img.example/2.jpg"></p>'
    assert choose_body(photos, URL, page_of(FULL), URL).source == "feed"
    assert choose_body(photos, URL, page_of(FULL + photos), URL).source == "page"


def test_no_page_means_the_feed() -> None:
    body = choose_body(FULL, URL)
    assert body.source == "feed" and body.image_urls == []


# --- what page extraction keeps -------------------------------------------------------------


def test_page_body_keeps_every_kind_of_content_in_order() -> None:
    body = choose_body(RICH_SUMMARY, URL, rich(), URL)
    assert body.source == "page"
    assert body.image_urls == ["http://img.example/a.png", "http://img.example/b.png",
                               "http://img.example/c-picture"]
    markdown = to_markdown(body.html)
    expected = [
        "第一段：归档工具需要保留正文中的每一个段落",
        "## 安装步骤",
        "- 第一项：下载源码包并解压到本地目录。",
        "- 第二项：运行 `pip install postarc` 完成安装。",
        "1. 步骤一：编写来源文件。",
        "2. 步骤二：执行抓取命令。",
        "| 组件 | 版本 |",
        "| Scrapy | 2.19 |",
        '```\ndef main():\n    print("a < b && c")\n    return 0\n```',
        "![第一张](http://img.example/a.png)",
        "> 引用：好的归档工具不会丢掉任何一段文字",
        "![第二张](http://img.example/b.png)",
        "![第三张](http://img.example/c-picture)",
        "最后一段：以上内容全部来自文章页面",
    ]
    positions = [markdown.find(part) for part in expected]
    assert -1 not in positions, [part for part, pos in zip(expected, positions) if pos < 0]
    assert positions == sorted(positions)


def test_page_body_has_no_scripts_styles_iframes_trackers_share_buttons_or_comments() -> None:
    html = extract_page(rich(), URL)
    markdown = to_markdown(html)
    for junk in JUNK:
        assert junk not in html and junk not in markdown, junk
    for tag in ("<script", "<style", "<iframe"):
        assert tag not in html


def test_page_text_between_line_breaks_is_kept() -> None:
    loose = ("<div>【编者的话】这次学习参照视频，主要是学习消息队列的使用以及整体的知识。<br>"
             "<h3>Kafka简介</h3>Kafka是一种消息队列，主要用来处理大量数据状态下的消息，一般用来做日志的处理。<br>"
             "<br>消息队列的好处：<br><ul><li>解耦合：接口出了问题也不会影响当前的功能。</li></ul>"
             "<div><img src='http://img.example/k.jpeg'></div>图片之后的这段文字直接跟在块元素后面，同样属于正文。</div>")
    markdown = markdown_plain_text(to_markdown(extract_page(page_of(loose), URL)))
    for block in text_blocks(loose):
        assert block in markdown, block


def test_page_text_after_a_comment_is_kept() -> None:
    """React pages put empty comments inside sentences; trafilatura dropped the text after them."""
    article = "".join(
        f'<p class="c">\n    And <!-- -->winter<!-- --> — from the rock salt on streets to “freeze-thaw” cycles {i}'
        f" that weaken pipes — makes problems worse.\n  </p><p>The city has one of the oldest networks of"
        f" subterranean infrastructure in the world, parts of it more than a century old ({i}).</p>"
        for i in range(3))
    markdown = markdown_plain_text(to_markdown(extract_page(f"<html><body><article><section><div>{article}"
                                                            "</div></section></article></body></html>", URL)))
    for block in text_blocks(article):
        assert block in markdown, block


@pytest.mark.parametrize("name", ["d&#xD800;iv", "foo:bar:baz", "svg:rect"])
def test_page_with_names_xml_refuses_is_extracted(name: str) -> None:
    """HTML5 takes ``<d&#xD800;iv>`` or ``<svg:rect>`` (outside SVG) for an element's name and
    ``a;b`` or ``{`` for an attribute's; trafilatura, which writes its result as XML and reads it
    back, failed on them (hypothesis, and a fuzz of the readability pages)."""
    article = f"&#xD800;<{name}>" + FULL.replace("<h2>", '<h2 a;b="1" {="2" xlink:href="#x">')
    markdown = markdown_plain_text(to_markdown(extract_page(page_of(article), URL)))
    for block in text_blocks(FULL):
        assert block in markdown, block


def test_page_image_with_an_attribute_name_lxml_refuses_is_kept() -> None:
    """``class="lazy"{`` names an attribute "{", which lxml's API refuses by name (hypothesis)."""
    article = FULL + '<p><img class="lazy"{ src="http://img.example/a.png" alt="图"></p>'
    assert [image.url for image in find_images(extract_page(page_of(article), URL))] == ["http://img.example/a.png"]


def test_page_pre_without_code_keeps_its_lines() -> None:
    pre = (FULL + "<p>下面是启动 Kafka 的命令，请按顺序执行，每一行都是一条单独的命令，不要合并成一行。</p>"
           "<pre class='prettyprint'># 启动 ZooKeeper<br>\n./zookeeper-server-start.sh config/zookeeper.properties<br>\n"
           "# 启动 Kafka<br>\n./kafka-server-start.sh config/server.properties</pre>"
           "<p>执行完成以后，可以用 jps 命令确认两个进程都已经启动，然后再继续下面的步骤。</p>")
    markdown = to_markdown(extract_page(page_of(pre), URL))
    assert ("```\n# 启动 ZooKeeper\n./zookeeper-server-start.sh config/zookeeper.properties\n# 启动 Kafka\n"
            "./kafka-server-start.sh config/server.properties\n```") in markdown


def test_page_without_content_gives_nothing() -> None:
    assert extract_page("", URL) == extract_page("<!-- nothing -->", URL) == ""


# --- the real corpus --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus() -> list[CorpusPost]:
    require_tool(f"the shared corpus at {CORPUS} (POSTARC_CORPUS)", (CORPUS / "posts").is_dir())
    return load_corpus(CORPUS)


def test_every_corpus_post_chooses_right(corpus: list[CorpusPost]) -> None:
    """Summary feed -> page; complete feed against a boilerplate-only, a truncated or the same page -> feed."""
    wrong = []
    for post in corpus:
        cases = [("summary", summary_html(post), article_page(post, post.html), "page"),
                 ("boilerplate", post.html, article_page(post, ""), "feed"),
                 ("truncated", post.html, article_page(post, post.html[: len(post.html) // 2]), "feed"),
                 ("same", post.html, article_page(post, post.html), "feed")]
        wrong += [(post.key, case) for case, feed, page, want in cases
                  if choose_body(feed, URL, page, URL).source != want]
    assert wrong == []


def test_corpus_pages_extracted_with_their_paragraphs_and_images(corpus: list[CorpusPost]) -> None:
    recalls = []
    for post in corpus:
        html = extract_page(article_page(post, post.html), URL)
        plain = markdown_plain_text(to_markdown(html))
        blocks = text_blocks(post.html)
        recalls.append(sum(block in plain for block in blocks) / len(blocks))
        assert [img.url for img in find_images(html)] == post.images, post.key
        assert not [junk for junk in ("热门推荐", "分享到微信", "沙发，写得不错", "京ICP备") if junk in plain], post.key
    assert sum(recalls) / len(recalls) >= 0.95
    assert min(recalls) >= 0.6


# --- through a crawl -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    """Three sources: a summary feed with a rich page, and a complete feed whose page is
    boilerplate only, and one whose page is cut in half."""
    tmp = tmp_path_factory.mktemp("extract")
    with SiteServer() as site:
        posts = {"summary": (RICH_SUMMARY, rich(site.base + "/img", site.base)),
                 "boilerplate": (FULL, page_of("")),
                 "truncated": (FULL, page_of(FULL[: len(FULL) // 2]))}
        for name, (feed, page) in posts.items():
            item = (f"<item><title>{name}</title><link>{site.base}/p/{name}.html</link><guid isPermaLink='false'>{name}</guid>"
                    f"<pubDate>Fri, 29 Apr 2022 00:12:15 GMT</pubDate><description><![CDATA[{feed}]]></description></item>")
            site.routes[f"/{name}.xml"] = Resource(
                f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>{item}</channel></rss>'.encode(),
                "application/rss+xml")
            site.routes[f"/p/{name}.html"] = Resource(page.encode(), gzip=True)
        for i, path in enumerate(("/img/a.png", "/img/b.png", "/img/b-small.png", "/img/c-picture", "/img/pixel.gif",
                                  "/static/placeholder.gif")):
            site.routes[path] = Resource(png(20 + i, 10, (i * 40, 90, 200)), "image/png")
        # Two feeds carry one text (FULL): each its own post here, as what is measured is the body chosen.
        sources = write_sources(tmp, "defaults: {dedup: within}\nsources:\n" + "".join(
            f"  - name: {name}\n    url: {site.base}/{name}.xml\n    follow_links: true\n" for name in posts))
        run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp / "data"))
        yield tmp / "data", site, run


def test_crawl_records_which_body_was_used(crawled) -> None:
    archive, _site, run = crawled
    assert run.returncode == 0, run.stderr[-3000:]
    with sqlite3.connect(archive / "state.sqlite") as db:
        used = dict(db.execute("SELECT guid, body_source FROM posts"))
    assert used == {"summary": "page", "boilerplate": "feed", "truncated": "feed"}
    bodies = {fm["guid"]: body for fm, body in posts_of(archive).values()}
    for guid in ("boilerplate", "truncated"):
        assert markdown_plain_text(bodies[guid]).endswith(text_blocks(FULL)[-1])


def test_crawled_page_body_keeps_everything_with_images_saved_in_order(crawled) -> None:
    archive, site, _run = crawled
    (fm, body), = [(fm, body) for fm, body in posts_of(archive).values() if fm["guid"] == "summary"]
    for part in ("## 安装步骤", "- 第二项：运行 `pip install postarc` 完成安装。", "2. 步骤二：执行抓取命令。",
                 "| trafilatura | 2.3 |", '    print("a < b && c")\n    return 0\n```', "最后一段"):
        assert part in body, part
    for junk in JUNK:
        assert junk not in body, junk
    md_dir = next((archive / "posts").rglob("*.md")).parent
    saved = [(md_dir / line.split("](")[1].rstrip(")")).read_bytes()
             for line in body.splitlines() if line.startswith("![")]
    assert saved == [site.routes[p].body for p in ("/img/a.png", "/img/b.png", "/img/c-picture")]
    assert fm["headimg"] == fm["thumbnail"] and body.index(f"]({fm['headimg']})") < body.index("第二张")
    requested = [path for path, _headers in site.log]
    assert "/img/pixel.gif" not in requested and "/img/b-small.png" not in requested
