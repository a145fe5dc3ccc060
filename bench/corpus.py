"""An aggregator built from a folder of seed-format posts (front matter + the post's HTML).

Each author becomes a source with an RSS feed carrying the posts' HTML; each post gets an
article page wrapped in navigation, sidebars, share buttons, comments and a footer. Images move
to a second server (another origin, as image CDNs are) and are written the ways real pages
write them: a plain or CORS-proxied ``src``, ``data-original`` or ``data-src`` behind a
placeholder, ``srcset`` and ``<picture>`` with a smaller variant. Options make the site harder
the way real ones are: pages in GBK, GB18030 labelled GB2312, Big5 or undeclared; feeds in GBK;
feeds that carry only a summary; dead article links; hotlink-protected images.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from html import escape
from pathlib import Path

import yaml

from archive.html import find_images, text_blocks
from archive.frontmatter import read_front_matter
from crawler.demo.server import Resource
from crawler.demo.site import png


@dataclass
class CorpusPost:
    key: str  # file stem
    title: str
    author: str
    categories: list[str]
    date_raw: str
    html: str
    images: list[str] = field(default_factory=list)  # origin image URLs, in order


def load_corpus(folder: Path) -> list[CorpusPost]:
    """Every ``*.md`` under ``folder`` (or ``folder/posts``), in name order."""
    root = folder / "posts" if (folder / "posts").is_dir() else folder
    posts = []
    for path in sorted(root.glob("*.md")):
        fm, body = read_front_matter(path.read_text(encoding="utf-8").lstrip())
        date = fm.get("date")
        date_raw = format_datetime(date, usegmt=True) if hasattr(date, "tzinfo") and date.tzinfo else str(date)
        posts.append(CorpusPost(key=path.stem, title=str(fm.get("title", "")), author=str(fm.get("author", "")),
                                categories=[str(c) for c in fm.get("categories") or []], date_raw=date_raw,
                                html=body, images=[i.url for i in find_images(body)]))
    return posts


# How non-UTF-8 article pages are served, in turn: (name, codec of the bytes, Content-Type, <meta>).
CHARSETS = [
    ("gbk-header", "gbk", "text/html; charset=GBK", ""),
    ("gbk-meta", "gbk", "text/html", '<meta charset="gbk">'),
    # GB2312 as declared, GB18030 in fact (characters outside GB2312, emoji included).
    ("gb2312-label", "gb18030", "text/html; charset=gb2312",
     '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">'),
    ("big5-meta", "big5", "text/html", '<meta charset="big5">'),
    ("gbk-undeclared", "gbk", "text/html", ""),
    ("utf8-bom", "utf-8-sig", "text/html; charset=gbk", ""),  # the BOM outranks the header
]
UTF8 = ("utf-8", "utf-8", "text/html; charset=utf-8", '<meta charset="utf-8">')

PAGE = """<!doctype html><html><head>{meta}<title>{title}</title>
<style>.layout{{display:flex}} .share a{{margin:0 4px}}</style>
<script>window.dataLayer = window.dataLayer || []; dataLayer.push({{"page": "article"}});</script></head><body>
<header><nav><a href="/">首页</a> <a href="/news">资讯</a> <a href="/tech">科技</a> <a href="/login">登录</a></nav></header>
<div class="layout"><aside class="sidebar"><h3>热门推荐</h3><ul>{related}</ul></aside>
<main><article><h1>{title}</h1><div class="meta">{author} · {date}</div>
<div class="content">{body}</div></article>
<section class="share"><a href="/share/wx">分享到微信</a> <a href="/share/wb">分享到微博</a></section>
<section class="comments"><h3>评论 (3)</h3><div class="comment"><p>沙发，写得不错！</p></div>
<div class="comment"><p>请问有原文链接吗？</p></div><div class="comment"><p>已收藏。</p></div></section></main></div>
<footer><p>© 2022 示例网 版权所有 · 京ICP备00000000号 · <a href="/about">关于我们</a> · <a href="/privacy">隐私政策</a></p></footer>
</body></html>"""

#: Text of the page template around the post: none of it belongs in an archived post.
BOILERPLATE = ["热门推荐", "分享到微信", "分享到微博", "沙发，写得不错", "请问有原文链接吗", "京ICP备00000000号", "隐私政策"]

PLACEHOLDER = "/static/lazy-placeholder.gif"
_IMG_TAG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_KEPT_ATTR = re.compile(r"""\s(?:alt|title|width|height|referrerpolicy)=(?:"[^"]*"|'[^']*')""", re.IGNORECASE)
_PROXY = re.compile(r"""(https?://[^"'\s]+?/\?)https?://""")
_DATA_GIF = "data:image/gif;base64,R0lGODlhAQABAAAAACw="
LAZY_FORMS = ("src", "data-original", "srcset", "data-src", "picture")


def image_path(url: str, small: bool = False) -> str:
    """Where the image server keeps an origin image (``small``: its smaller variant)."""
    return f"/img/{hashlib.sha1(url.encode()).hexdigest()[:16]}{'-480' if small else ''}.png"


def image_bytes(url: str, small: bool = False) -> bytes:
    """A PNG of its own for every image URL, so a saved file shows which image it is."""
    h = hashlib.sha1(url.encode()).digest()
    width, height = (12 + h[0] % 40, 10 + h[1] % 30) if small else (60 + h[0] % 60, 40 + h[1] % 40)
    return png(width, height, (h[2], h[3], h[4]))


def lazy_image(tag: str, url: str, form: str, images: str, site: str) -> str:
    """``tag`` rewritten to show the image at ``images`` in one of the ways pages write images."""
    big, small = images + image_path(url), images + image_path(url, small=True)
    kept = "".join(_KEPT_ATTR.findall(tag))
    proxy = m.group(1) if (m := _PROXY.search(tag)) else ""
    if form == "data-original":
        return f'<img class="lazy" data-original="{big}" src="{site}{PLACEHOLDER}"{kept}>'
    if form == "srcset":
        return f'<img srcset="{small} 480w, {big} 1080w" sizes="100vw" src="{small}"{kept}>'
    if form == "data-src":
        return f'<img data-src="{big}" src="{_DATA_GIF}" loading="lazy"{kept}>'
    if form == "picture":
        return f'<picture><source srcset="{big}" type="image/png"><img src="{small}"{kept}></picture>'
    return f'<img src="{proxy}{big}"{kept}>'


def summary_html(post: CorpusPost) -> str:
    """What a summary-only feed carries: the start of the first paragraph and an ellipsis."""
    blocks = text_blocks(post.html)
    return f"<p>{escape(blocks[0][:100] if blocks else post.title)}…</p>"


@dataclass
class Aggregator:
    routes: dict[str, Resource]  # the aggregator and article site
    image_routes: dict[str, Resource]  # the image server
    sources_yaml: str
    posts: list[CorpusPost]
    source_of: dict[str, str]  # post key -> source name
    link_of: dict[str, str]  # post key -> article URL
    charset_of: dict[str, str] = field(default_factory=dict)  # post key -> CHARSETS name (non-UTF-8 pages)
    dead: set[str] = field(default_factory=set)  # post keys whose article link is dead
    summary: set[str] = field(default_factory=set)  # post keys whose feed carries only a summary
    gbk_feeds: set[str] = field(default_factory=set)  # source names whose feed is GBK-encoded
    hotlinked: set[str] = field(default_factory=set)  # image URLs that refuse the article's Referer


def source_name(author: str) -> str:
    """A sources-file name for an author: its word characters (CJK included)."""
    return re.sub(r"[^\w.-]+", "-", author).strip("-") or "unnamed"


def build_aggregator(posts: list[CorpusPost], base: str, image_base: str | None = None, *, charset_every: int = 0,
                     dead_every: int = 0, summary_every: int = 0, gbk_feed_every: int = 0,
                     hotlink: bool = False) -> Aggregator:
    """Routes and a sources file for ``posts``, the site at ``base``, images at ``image_base``.

    ``charset_every=N``: every Nth article page is served in a legacy charset (``CHARSETS`` in
    turn); ``dead_every=N``: every Nth article link is dead (404); ``summary_every=N``: every Nth
    post with a live link has only a summary in its feed; ``gbk_feed_every=N``: every Nth
    source's feed is GBK; ``hotlink``: the image server refuses foreign Referers (answering
    403, as hotlink protection does), except, for every other image, the article site's.
    """
    images = image_base or base
    agg = Aggregator({}, {}, "", posts, {}, {})
    by_source: dict[str, list[tuple[CorpusPost, str]]] = {}
    counter = 0
    for i, post in enumerate(posts, 1):
        html, counter = _rewrite_images(post.html, images, base, counter, agg, hotlink)
        name = source_name(post.author)
        link = f"{base}/article/{post.key}.html"
        if dead_every and i % dead_every == 0:
            link = f"{base}/gone/{post.key}.html"
            agg.dead.add(post.key)
        else:
            agg.routes[f"/article/{post.key}.html"] = _article(post, html, posts, i, charset_every, agg)
            if summary_every and i % summary_every == 0:
                agg.summary.add(post.key)
        by_source.setdefault(name, []).append((post, summary_html(post) if post.key in agg.summary else html))
        agg.source_of[post.key], agg.link_of[post.key] = name, link
    sources: list[dict[str, object]] = []
    for n, (name, entries) in enumerate(by_source.items(), 1):
        gbk = bool(gbk_feed_every) and n % gbk_feed_every == 0
        agg.routes[f"/feeds/{name}.xml"] = _feed(entries, base, agg.link_of, gbk)
        if gbk:
            agg.gbk_feeds.add(name)
        sources.append({"name": name, "url": f"{base}/feeds/{name}.xml", "categories": entries[0][0].categories,
                        "follow_links": True, "timezone": "Asia/Shanghai"})
    agg.routes["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain")
    agg.routes[PLACEHOLDER] = Resource(png(1, 1, (238, 238, 238)), "image/png")
    agg.image_routes["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain")
    agg.sources_yaml = yaml.safe_dump({"sources": sources}, allow_unicode=True, sort_keys=False)
    return agg


def _rewrite_images(html: str, images: str, site: str, counter: int, agg: Aggregator,
                    hotlink: bool) -> tuple[str, int]:
    """Every image of ``html`` moved to the image server, the lazy forms taken in turn."""

    def swap(m: re.Match[str]) -> str:
        nonlocal counter
        found = find_images(m.group(0))
        if not found:  # a tracker or a data: URI: left as it is
            return m.group(0)
        url = found[0].url
        form = LAZY_FORMS[counter % len(LAZY_FORMS)]
        counter += 1
        # Hotlink protection: only the image server's own pages (or no Referer) for about half
        # of the images; the others also let the article site in, as a publisher's CDN does.
        strict = hashlib.sha1(url.encode()).digest()[5] % 2 == 1
        allowed = (images,) if strict else (images, site)
        if hotlink and strict:
            agg.hotlinked.add(url)
        for small in (False, True):
            agg.image_routes[image_path(url, small)] = Resource(
                image_bytes(url, small), "image/png", referer_required=allowed if hotlink else None)
        return lazy_image(m.group(0), url, form, images, site)

    return _IMG_TAG.sub(swap, html), counter


def _article(post: CorpusPost, html: str, posts: list[CorpusPost], i: int, charset_every: int,
             agg: Aggregator) -> Resource:
    name, codec, ctype, meta = UTF8
    if charset_every and i % charset_every == 0:
        name, codec, ctype, meta = CHARSETS[(i // charset_every - 1) % len(CHARSETS)]
        agg.charset_of[post.key] = name
    page = article_page(post, html, posts[:8], meta)
    return Resource(page.encode(codec, "xmlcharrefreplace"), ctype, gzip=i % 2 == 0, chunked=i % 3 == 0)


def article_page(post: CorpusPost, body: str, related: Sequence[CorpusPost] = (), meta: str = UTF8[3]) -> str:
    """The post's article page: ``body`` inside the site's navigation, sidebar, comments, footer."""
    links = "".join(f'<li><a href="/article/{p.key}.html">{escape(p.title)}</a></li>' for p in related)
    return PAGE.format(meta=meta, title=escape(post.title), author=escape(post.author), date=escape(post.date_raw),
                       body=body, related=links)


def _feed(entries: list[tuple[CorpusPost, str]], base: str, link_of: dict[str, str], gbk: bool) -> Resource:
    author = entries[0][0].author
    items = "".join(
        f"<item><title>{escape(p.title)}</title><link>{link_of[p.key]}</link>"
        f'<guid isPermaLink="false">corpus-{p.key}</guid><pubDate>{escape(p.date_raw)}</pubDate>'
        f"<description><![CDATA[{html.replace(']]>', ']]]]><![CDATA[>')}]]></description></item>"
        for p, html in entries)
    encoding = "GBK" if gbk else "UTF-8"
    feed = (f'<?xml version="1.0" encoding="{encoding}"?><rss version="2.0"><channel>'
            f"<title>{escape(author)}</title><link>{base}/</link>{items}</channel></rss>")
    if gbk:  # characters GBK lacks become character references, which the HTML parser reads back
        return Resource(feed.encode("gbk", "xmlcharrefreplace"), "application/rss+xml")
    return Resource(feed.encode(), "application/rss+xml; charset=utf-8")
