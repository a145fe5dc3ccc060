"""Charsets: pages and feeds in GBK, GB2312 (meaning GB18030), GB18030, Big5 and UTF-8, declared
by HTTP header, <meta>, BOM or not at all, come out without mojibake — in archive.charset, in
the downloader middleware, and through a real crawl whose posts take their body from the page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy import Request
from scrapy.http import HtmlResponse
from w3lib.encoding import html_to_unicode

from archive.charset import detect_encoding, html_encoding
from archive.feeds import parse_feed
from bench.corpus import article_page, load_corpus
from bench.measure import markdown_plain_text, mojibake
from crawler.charset import CharsetMiddleware
from crawler.demo.server import Resource, SiteServer
from tests.conftest import require_tool
from tests.helpers import REPO, postarc, posts_of, write_sources

CORPUS = Path(os.environ.get("POSTARC_CORPUS", REPO.parent / "shared" / "corpus"))

SIMPLIFIED = [
    "港区应急局的执法人员近日走进封闭生产的企业，检查安全生产与防疫措施的落实情况。",
    "他们既是企业安全生产的检查员，也是企业防疫安全的督察员，每到一处都要核对人员与物资。",
    "只要企业生产在继续，监管就不会停下来。执法人员通过电话、视频轮巡等方式了解企业情况。",
    "对于检查中发现的问题，应急局现场责令整改，并在一周后开展“回头看”，确认整改到位。",
    "下一步，应急局将继续紧抓企业的生产安全和防疫安全，为复工复产创造良好的安全环境。",
]
# In GBK but not GB2312 (镕), or only in GB18030's four-byte part (𠮷, 😀, 㐀).
GB18030_ONLY = "朱镕基题词：“𠮷野家”开业，㐀字也能显示 😀。这一段只能用 GB18030 编码，GB2312 和 GBK 都放不下。"
TRADITIONAL = [
    "港區應急局的執法人員近日走進封閉生產的企業，檢查安全生產與防疫措施的落實情況。",
    "他們既是企業安全生產的檢查員，也是企業防疫安全的督察員，每到一處都要核對人員與物資。",
    "只要企業生產在繼續，監管就不會停下來。執法人員通過電話、視頻輪巡等方式瞭解企業情況。",
    "對於檢查中發現的問題，應急局現場責令整改，並在一週後開展回頭看，確認整改到位。",
    "下一步，應急局將繼續緊抓企業的生產安全和防疫安全，為復工復產創造良好的安全環境。",
]
HKSCS = "粵語裡「嘅」字係香港增補字符集先有嘅字，淨係 Big5 冇呢個字。"  # 嘅: Big5-HKSCS only


def page(paragraphs: list[str], meta: str = "", title: str = "港区应急局一直在路上") -> str:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!doctype html><html><head>{meta}<title>{title}</title></head><body>"
            f"<nav><a href='/'>Home</a> <a href='/news'>News</a></nav><article><h1>{title}</h1>{body}</article>"
            f"<footer>(c) 2024 Example News</footer></body></html>")


# name -> (paragraphs, body bytes, Content-Type)
VARIANTS: dict[str, tuple[list[str], bytes, str]] = {
    "gbk-header": (SIMPLIFIED, page(SIMPLIFIED).encode("gbk"), "text/html; charset=GBK"),
    "gbk-meta": (SIMPLIFIED, page(SIMPLIFIED, '<meta charset="gbk">').encode("gbk"), "text/html"),
    "gb2312-http-equiv-means-gb18030": (
        [*SIMPLIFIED, GB18030_ONLY],
        page([*SIMPLIFIED, GB18030_ONLY], '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'
             ).encode("gb18030"), "text/html"),
    "gb2312-header-means-gb18030": ([*SIMPLIFIED, GB18030_ONLY], page([*SIMPLIFIED, GB18030_ONLY]).encode("gb18030"),
                                    "text/html; charset=gb2312"),
    "gb18030-meta": ([*SIMPLIFIED, GB18030_ONLY],
                     page([*SIMPLIFIED, GB18030_ONLY], '<meta charset="GB18030">').encode("gb18030"), "text/html"),
    "utf8-bom-beats-header": (SIMPLIFIED, page(SIMPLIFIED).encode("utf-8-sig"), "text/html; charset=gbk"),
    "header-beats-meta": (SIMPLIFIED, page(SIMPLIFIED, '<meta charset="gbk">').encode("utf-8"),
                          "text/html; charset=utf-8"),
    "gbk-undeclared": (SIMPLIFIED, page(SIMPLIFIED).encode("gbk"), "text/html"),
    "big5-header-means-hkscs": ([*TRADITIONAL, HKSCS], page([*TRADITIONAL, HKSCS], title="港區應急局").encode("big5hkscs"),
                                "text/html; charset=big5"),
    "big5-meta": (TRADITIONAL, page(TRADITIONAL, '<meta charset="big5">', title="港區應急局").encode("big5"),
                  "text/html"),
    "big5-undeclared": (TRADITIONAL, page(TRADITIONAL, title="港區應急局").encode("big5"), "text/html"),
    "utf8-undeclared": ([*SIMPLIFIED, GB18030_ONLY], page([*SIMPLIFIED, GB18030_ONLY]).encode("utf-8"), "text/html"),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_html_encoding_decodes_without_mojibake(name: str) -> None:
    paragraphs, body, content_type = VARIANTS[name]
    text = body.decode(html_encoding(body, content_type)).lstrip("\ufeff")
    assert not mojibake(text)
    assert all(p in text for p in paragraphs)


@pytest.mark.parametrize(("content_type", "meta", "expected"), [
    ("text/html; charset=gb2312", "", "gb18030"),
    ("text/html; charset=GBK", "", "gb18030"),
    ("text/html", '<meta charset="gb2312">', "gb18030"),
    ("text/html; charset=big5", "", "big5hkscs"),
    ("text/html; charset=iso-8859-1", "", "cp1252"),
])
def test_labels_are_read_as_browsers_read_them(content_type: str, meta: str, expected: str) -> None:
    assert html_encoding(page(["x"], meta).encode("ascii", "xmlcharrefreplace"), content_type) == expected


_BOMS = st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"])
_LABELS = st.sampled_from(["utf-8", "UTF8", "gbk", "gb2312", "big5", "latin1", "utf-16", "utf-32", "utf-16le",
                           "shift_jis", "koi8-r", "x-user-defined", "unicode-1-1-utf-7", "nonsense", ""])
_DECLARATIONS = st.sampled_from(['<meta charset="{}">', '<meta http-equiv="Content-Type" content="text/html; charset={}">',
                                 '<?xml version="1.0" encoding="{}"?>', "<!-- charset={} -->", ""])
_TEXTS = st.sampled_from(["plain ascii", "中文", "港區", "café", "😀"])


@settings(max_examples=400, deadline=None)
@given(bom=_BOMS, header=st.one_of(st.none(), _LABELS.map("text/html; charset={}".format), st.just("text/html")),
       declaration=_DECLARATIONS, label=_LABELS, text=_TEXTS, codec=st.sampled_from(["utf-8", "gbk", "big5", "latin-1"]),
       junk=st.binary(max_size=8))
def test_html_encoding_names_what_w3lib_names(bom: bytes, header: str | None, declaration: str, label: str,
                                              text: str, codec: str, junk: bytes) -> None:
    """The name is found by html_to_unicode's own steps, without decoding the whole body."""
    body = bom + (declaration.format(label) + f"<p>{text}</p>").encode(codec, "xmlcharrefreplace") + junk
    assert html_encoding(body, header) == html_to_unicode(header, body, auto_detect_fun=detect_encoding)[0]


def test_detection_prefers_valid_utf8_and_names_legacy_charsets() -> None:
    assert detect_encoding("中文".encode()) == "utf-8"
    assert detect_encoding(page(SIMPLIFIED).encode("gbk")) == "gb18030"
    assert detect_encoding(page(TRADITIONAL, title="港區應急局").encode("big5")).startswith("big5")


@pytest.mark.parametrize("name", VARIANTS)
def test_middleware_gives_scrapy_responses_the_right_text(name: str) -> None:
    paragraphs, body, content_type = VARIANTS[name]
    request = Request("http://127.0.0.1/p.html")
    response = HtmlResponse(request.url, body=body, headers={"Content-Type": content_type}, request=request)
    text = CharsetMiddleware().process_response(request, response).text
    assert all(p in text for p in paragraphs) and not mojibake(text)


@pytest.mark.parametrize(("declared", "codec", "content_type"), [
    ("GBK", "gbk", "application/rss+xml"),
    ("gb2312", "gb18030", "application/rss+xml"),  # labelled GB2312, GB18030 in fact
    ("gb2312", "gb18030", "text/xml; charset=gb2312"),
    ("big5", "big5", "application/rss+xml"),
])
def test_feeds_in_legacy_charsets(declared: str, codec: str, content_type: str) -> None:
    title, text = {"big5": ("港區應急局", TRADITIONAL[0]), "gbk": ("朱镕基 港区", SIMPLIFIED[0]),
                   "gb18030": ("朱镕基 𠮷 😀 港区", GB18030_ONLY)}[codec]
    feed = (f'<?xml version="1.0" encoding="{declared}"?><rss version="2.0"><channel><title>{title}</title>'
            f"<item><title>{title}</title><guid>g</guid><description>&lt;p&gt;{text}&lt;/p&gt;</description>"
            f"</item></channel></rss>")
    parsed = parse_feed(feed.encode(codec), "http://127.0.0.1/feed.xml", content_type)
    assert parsed.title == parsed.entries[0].title == title
    assert parsed.entries[0].html == f"<p>{text}</p>"


def test_undeclared_legacy_pages_of_the_corpus_are_all_detected() -> None:
    """Every corpus post's page, cut at many lengths, in GBK, GB18030 and Big5 with no declaration.

    Scrapy's own detection (charset_normalizer) gives up on about 2 % of these and decodes them
    as ASCII with U+FFFD; ``detect_encoding`` (chardet) names every one.
    """
    require_tool(f"the shared corpus at {CORPUS} (POSTARC_CORPUS)", (CORPUS / "posts").is_dir())
    wrong = []
    for post in load_corpus(CORPUS):
        for end in range(500, len(post.html) + 1000, 1000):
            text = article_page(post, post.html[:end], meta="")
            for codec in ("gbk", "gb18030", "big5"):
                body = text.encode(codec, "xmlcharrefreplace")
                if body.decode(html_encoding(body, "text/html"), "replace") != body.decode(codec):
                    wrong.append((post.key, end, codec))
    assert wrong == []


# --- through a crawl -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crawled(tmp_path_factory: pytest.TempPathFactory):
    """One source whose feed (in GBK) carries one-line summaries: every post's body must come
    from its page, served in each of the variants above."""
    tmp = tmp_path_factory.mktemp("charsets")
    with SiteServer() as site:
        items = []
        for name, (paragraphs, body, content_type) in VARIANTS.items():
            site.routes[f"/p/{name}.html"] = Resource(body, content_type, gzip=True)
            items.append(f"<item><title>镕 {name}</title><link>{site.base}/p/{name}.html</link>"
                         f"<guid isPermaLink='false'>{name}</guid><pubDate>Fri, 29 Apr 2022 00:12:15 GMT</pubDate>"
                         f"<description>&lt;p&gt;{paragraphs[0][:12]}…&lt;/p&gt;</description></item>")
        feed = (f'<?xml version="1.0" encoding="gb2312"?><rss version="2.0"><channel><title>朱镕基 𠮷</title>'
                f"{''.join(items)}</channel></rss>")
        site.routes["/feed.xml"] = Resource(feed.encode("gb18030"), "application/rss+xml")
        sources = write_sources(tmp, f"sources:\n  - name: legacy\n    url: {site.base}/feed.xml\n"
                                     "    follow_links: true\n")
        yield tmp / "data", postarc("crawl", "--sources", str(sources), "--archive", str(tmp / "data"))


def test_crawled_posts_take_the_page_text_without_mojibake(crawled) -> None:
    archive, run = crawled
    assert run.returncode == 0, run.stderr[-3000:]
    posts = {fm["guid"]: (fm, body) for fm, body in posts_of(archive).values()}
    assert set(posts) == set(VARIANTS)
    for name, (fm, body) in posts.items():
        assert fm["title"] == f"镕 {name}"
        assert fm["categories"] == ["朱镕基 𠮷"]
        plain = markdown_plain_text(body)
        assert not mojibake(fm["title"] + body), name
        missing = [p for p in VARIANTS[name][0] if p not in plain]
        assert not missing, (name, missing)
