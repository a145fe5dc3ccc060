"""An aggregator built from a folder of seed-format posts (front matter + the post's HTML).

Each author becomes a source with an RSS feed carrying the posts' HTML; each post gets an
article page wrapped in navigation, sidebars, comments and a footer; image URLs are moved onto
the local server (keeping any CORS-proxy prefix in front of them) and served as real images.
Options make the site harder the way real ones are: GBK pages, dead article links and
hotlink-protected images.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from email.utils import format_datetime
from html import escape
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from archive.html import find_images
from archive.markdown import read_front_matter
from crawler.demo.server import Resource
from crawler.demo.site import png

IMG_ATTRS = re.compile(r'((?:src|data-src|data-original|data-actualsrc)=["\'])([^"\']+)(["\'])')


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


def local_image_path(url: str) -> str:
    suffix = Path(urlsplit(url).path).suffix.lower()
    ext = suffix if suffix in {".jpg", ".jpeg", ".png", ".gif", ".webp"} else ".jpg"
    return f"/img/{hashlib.sha1(url.encode()).hexdigest()[:16]}{ext}"


def localise_images(html: str, base: str) -> str:
    """Point every image URL at ``base``, keeping a proxy prefix where there was one."""

    def swap(m: re.Match[str]) -> str:
        url = m.group(2)
        proxy, _, origin = url.rpartition("?http") if "/?http" in url else ("", "", url)
        origin = "http" + origin if proxy else origin
        if not origin.startswith(("http://", "https://", "//")):
            return m.group(0)
        local = base + local_image_path(origin if not origin.startswith("//") else "http:" + origin)
        return m.group(1) + (proxy + "?" + local if proxy else local) + m.group(3)

    return IMG_ATTRS.sub(swap, html)


PAGE = """<!doctype html><html><head><meta charset="{charset}"><title>{title}</title></head><body>
<header><nav><a href="/">首页</a> <a href="/news">资讯</a> <a href="/tech">科技</a> <a href="/login">登录</a></nav></header>
<div class="layout"><aside class="sidebar"><h3>热门推荐</h3><ul>{related}</ul></aside>
<main><article><h1>{title}</h1><div class="meta">{author} · {date}</div>
<div class="content">{body}</div></article>
<section class="share"><a href="/share/wx">分享到微信</a> <a href="/share/wb">分享到微博</a></section>
<section class="comments"><h3>评论 (3)</h3><div class="comment"><p>沙发，写得不错！</p></div>
<div class="comment"><p>请问有原文链接吗？</p></div><div class="comment"><p>已收藏。</p></div></section></main></div>
<footer><p>© 2022 示例网 版权所有 · 京ICP备00000000号 · <a href="/about">关于我们</a> · <a href="/privacy">隐私政策</a></p></footer>
</body></html>"""


@dataclass
class Aggregator:
    routes: dict[str, Resource]
    sources_yaml: str
    posts: list[CorpusPost]
    source_of: dict[str, str]  # post key -> source name
    link_of: dict[str, str]  # post key -> article URL


def source_name(author: str) -> str:
    """A sources-file name for an author: its word characters (CJK included)."""
    return re.sub(r"[^\w.-]+", "-", author).strip("-") or "unnamed"


def build_aggregator(posts: list[CorpusPost], base: str, *, gbk_every: int = 0, dead_every: int = 0,
                     hotlink: bool = False) -> Aggregator:
    """Routes and a sources file for ``posts`` served at ``base``.

    ``gbk_every=N``: every Nth article page is served in GBK; ``dead_every=N``: every Nth article
    link is dead (404); ``hotlink``: images answer 403 to a Referer from another site.
    """
    routes: dict[str, Resource] = {}
    by_source: dict[str, list[tuple[CorpusPost, str]]] = {}
    source_of, link_of = {}, {}
    for i, post in enumerate(posts, 1):
        name = source_name(post.author)
        html = localise_images(post.html, base)
        link = f"{base}/article/{post.key}.html"
        if dead_every and i % dead_every == 0:
            link = f"{base}/gone/{post.key}.html"
        else:
            charset = "gbk" if gbk_every and i % gbk_every == 0 else "utf-8"
            page = PAGE.format(charset=charset, title=escape(post.title), author=escape(post.author),
                               date=escape(post.date_raw), body=html,
                               related="".join(f'<li><a href="/article/{p.key}.html">{escape(p.title)}</a></li>'
                                               for p in posts[:8]))
            body = page.encode(charset, "xmlcharrefreplace")
            ctype = "text/html" if charset == "gbk" else "text/html; charset=utf-8"
            routes[urlsplit(link).path] = Resource(body, ctype, gzip=i % 2 == 0, chunked=i % 3 == 0)
        for url in post.images:
            routes[local_image_path(url)] = Resource(
                png(32 + i % 16, 24, (i * 37 % 256, i * 91 % 256, 120)), "image/png",
                referer_required=base if hotlink else None)
        by_source.setdefault(name, []).append((post, html))
        source_of[post.key], link_of[post.key] = name, link
    sources: list[dict[str, object]] = []
    for name, entries in by_source.items():
        author = entries[0][0].author
        items = "".join(
            f"<item><title>{escape(p.title)}</title><link>{link_of[p.key]}</link>"
            f'<guid isPermaLink="false">corpus-{p.key}</guid><pubDate>{escape(p.date_raw)}</pubDate>'
            f"<description><![CDATA[{html.replace(']]>', ']]]]><![CDATA[>')}]]></description></item>"
            for p, html in entries)
        feed = (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
                f"<title>{escape(author)}</title><link>{base}/</link>{items}</channel></rss>")
        routes[f"/feeds/{name}.xml"] = Resource(feed.encode(), "application/rss+xml; charset=utf-8")
        sources.append({"name": name, "url": f"{base}/feeds/{name}.xml", "categories": entries[0][0].categories,
                        "follow_links": True, "timezone": "Asia/Shanghai"})
    routes["/robots.txt"] = Resource(b"User-agent: *\nAllow: /\n", "text/plain")
    text = yaml.safe_dump({"sources": sources}, allow_unicode=True, sort_keys=False)
    return Aggregator(routes, text, posts, source_of, link_of)
