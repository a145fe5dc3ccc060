"""The bundled sample aggregator: three feeds (RSS 2.0, Atom, JSON Feed) of hand-written posts.

The posts carry what real aggregator posts carry (see shared/corpus): lazy images behind
``data-original``, ``referrerpolicy="no-referrer"``, image URLs behind a CORS-proxy prefix,
GMT and naive dates, code in ``<pre>`` with ``<br>``, a table, and one dead article link.
"""

from __future__ import annotations

import json
import struct
import zlib
from html import escape

from crawler.demo.server import Resource

PROXY = "https://cors.example.workers.dev/?"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, so the demo ships no binary files."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))


IMAGES = {
    "/img/harbour.png": png(64, 40, (30, 90, 160)),
    "/img/chart.png": png(48, 48, (200, 120, 40)),
    "/img/team.png": png(80, 50, (60, 160, 90)),
    "/img/terminal.png": png(72, 40, (20, 20, 20)),
}

# (slug, title, author, date as the feed writes it, body HTML with {base} and {proxy})
POSTS = [
    ("harbour", "以生产安全托底防疫安全：港区应急局一直在路上！", "新媒体", "Fri, 29 Apr 2022 00:12:15 GMT", """
<p>近日，在封闭生产的港区某企业里，出现了几个不一样的“大白”——他们是应急局的安全生产执法检查人员。</p>
<p><img src="{proxy}{base}/img/harbour.png" data-size="64,40" referrerpolicy="no-referrer"></p>
<h2>不曾停歇的监管脚步</h2>
<p>只要企业生产在继续，监管就不会停下来。执法人员通过电话、视频轮巡等方式了解企业情况。</p>
<blockquote><p>“既要当企业安全的引路人，也要当企业发展的陪伴者。”</p></blockquote>
<ul><li>危化品企业：8 家</li><li>工贸企业：13 家</li><li>食品企业：6 家</li></ul>
<p>通讯员：蔡怡磊</p>"""),
    ("rust-release", "Rust 1.80 发布：LazyCell 与 exclusive ranges 稳定", "开源中国", "2024-07-25 14:08:07", """
<p>Rust 团队宣布发布 Rust 1.80。本次更新稳定了 <code>LazyCell</code> 和 <code>LazyLock</code>。</p>
<p><img class="lazy" data-original="{base}/img/terminal.png" src="{base}/img/placeholder.gif" loading="lazy" referrerpolicy="no-referrer"></p>
<pre><code>use std::sync::LazyLock;<br>static CONFIG: LazyLock&lt;String&gt; = LazyLock::new(|| {{<br>&nbsp;&nbsp;&nbsp;&nbsp;std::env::var("CONFIG").unwrap_or_default()<br>}});</code></pre>
<p>升级方式：<code>rustup update stable</code>。比较 a &lt; b &amp;&amp; c &gt; d 的写法也更简洁。</p>
<table><tr><th>特性</th><th>状态</th></tr><tr><td>LazyCell</td><td>稳定</td></tr><tr><td>exclusive ranges</td><td>稳定</td></tr></table>"""),
    ("dead-link", "这篇文章的原文已经删除，但 feed 里还有全文", "煎蛋", "Sun, 25 Apr 2021 03:05:00 GMT", """
<p>原文链接已经失效（404），但 RSSHub 的 feed 里带着全文，postarc 依然把它存档。</p>
<p><img src="{base}/img/chart.png" alt="图表" referrerpolicy="no-referrer"></p>
<p>这就是为什么 feed 里的 HTML 是一等的正文来源。</p>"""),
    ("atom-release-notes", "Release notes: archiving the small web", "Demo Blog", "2024-03-02T09:30:00+08:00", """
<p>This post arrives in an <strong>Atom</strong> feed. Its article page is wrapped in navigation and
comments; the feed carries the whole text, so the feed body wins.</p>
<h3>What changed</h3>
<ol><li>Images behind <em>lazy loading</em> are found.</li><li>Dates become UTC.</li></ol>
<p><img srcset="{base}/img/team.png 2x, {base}/img/chart.png 1x" src="{base}/img/chart.png" alt="team"></p>"""),
    ("json-feed-post", "JSON Feed 也是 feed：一条来自 JSON 的帖子", "知乎", "2022-03-29 00:43:13", """
<p>JSON Feed 1.1 的 <code>content_html</code> 字段带着正文。</p>
<p>第二段：日期没有时区，按来源的时区（Asia/Shanghai）理解。</p>
<p><img data-src="{base}/img/harbour.png" src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="港口"></p>"""),
]

ARTICLE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<meta property="article:published_time" content="{iso}"></head><body>
<nav><a href="/">首页</a> | <a href="/tech">科技</a> | <a href="/about">关于</a></nav>
<aside><h4>热门文章</h4><ul><li><a href="/x">别的文章一</a></li><li><a href="/y">别的文章二</a></li></ul></aside>
<article><h1>{title}</h1>{body}</article>
<section class="comments"><h4>评论</h4><p>沙发！</p><p>写得好。</p></section>
<footer>© 2024 Demo Aggregator · <a href="/privacy">隐私</a></footer></body></html>"""


def _rss(base: str, posts: list[tuple[str, str, str, str, str]]) -> bytes:
    items = []
    for slug, title, author, date, body in posts:
        link = f"{base}/gone/{slug}" if slug == "dead-link" else f"{base}/posts/{slug}.html"
        items.append(f"""<item><title>{escape(title)}</title><link>{link}</link>
<guid isPermaLink="false">demo-{slug}</guid><author>{escape(author)}</author>
<pubDate>{date}</pubDate><description><![CDATA[{body.format(base=base, proxy=PROXY)}]]></description></item>""")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>示例聚合 - 热门</title><link>{base}/</link>
<description>postarc demo aggregator</description>{''.join(items)}</channel></rss>""".encode()


def _atom(base: str, post: tuple[str, str, str, str, str]) -> bytes:
    slug, title, author, date, body = post
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Demo Blog</title><id>{base}/atom.xml</id>
<updated>{date}</updated><link href="{base}/"/>
<entry><title>{escape(title)}</title><id>tag:demo,2024:{slug}</id><link href="{base}/posts/{slug}.html"/>
<published>{date}</published><updated>{date}</updated><author><name>{escape(author)}</name></author>
<content type="html">{escape(body.format(base=base, proxy=PROXY))}</content></entry></feed>""".encode()


def _json_feed(base: str, post: tuple[str, str, str, str, str]) -> bytes:
    slug, title, author, date, body = post
    doc = {"version": "https://jsonfeed.org/version/1.1", "title": "知乎热榜", "home_page_url": base,
           "items": [{"id": f"demo-{slug}", "url": f"{base}/posts/{slug}.html", "title": title,
                      "content_html": body.format(base=base, proxy=PROXY), "date_published": date,
                      "authors": [{"name": author}]}]}
    return json.dumps(doc, ensure_ascii=False).encode()


def build_routes(base: str) -> dict[str, Resource]:
    """Every path of the sample aggregator, with URLs pointing at ``base``."""
    routes = {
        "/rss.xml": Resource(_rss(base, POSTS[:3]), "application/rss+xml; charset=utf-8", chunked=True),
        "/atom.xml": Resource(_atom(base, POSTS[3]), "application/atom+xml; charset=utf-8", gzip=True),
        "/feed.json": Resource(_json_feed(base, POSTS[4]), "application/feed+json; charset=utf-8"),
        "/robots.txt": Resource(b"User-agent: *\nDisallow: /private/\n", "text/plain"),
    }
    for slug, title, _author, _date, body in POSTS:
        html = ARTICLE.format(title=escape(title), iso="2024-01-01T00:00:00Z", body=body.format(base=base, proxy=PROXY))
        routes[f"/posts/{slug}.html"] = Resource(html.encode(), gzip=True)
    for path, data in IMAGES.items():
        routes[path] = Resource(data, "image/png", referer_required=base)
    return routes


def sources_yaml(base: str) -> str:
    """A sources file for the sample aggregator."""
    return f"""# Sources of the postarc demo: the bundled sample aggregator at {base}
rsshub: {base}
sources:
  - name: demo-hot
    url: rsshub://rss.xml
    categories: [新媒体, 示例, 热门]
    follow_links: true
    timezone: Asia/Shanghai
  - name: demo-blog
    url: {base}/atom.xml
    follow_links: true
  - name: demo-zhihu
    url: {base}/feed.json
    categories: [知乎]
    timezone: Asia/Shanghai
"""
