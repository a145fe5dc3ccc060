"""A synthetic aggregator of N posts as static files, for the throughput benchmark.

Post bodies are the real posts of a seed-format corpus (bench.corpus) with their images
replaced by exactly three local ones; the site has what a real one has around them:
feeds of 20 entries carrying each post's HTML, article pages of 60–120 KB (head scripts and
styles, a menu, related links, comments, a footer), and three incompressible ~20 KB images
per post. Every other article page is also stored pre-gzipped, so a server with
``gzip_static`` sends it content-encoded. Files are written one at a time: generating 5000
posts holds none of them in memory.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape
from pathlib import Path

import yaml

from archive.html import find_images, text_blocks
from bench.corpus import CorpusPost

FEED_ENTRIES = 20
IMAGES_PER_POST = 3
PAGE_KB = (60, 120)
MAX_BODY_BYTES = 50_000  # bodies above this would not fit a 60–120 KB page with its boilerplate
_IMAGE_TAGS = re.compile(r"<(?:img|source)\b[^>]*>", re.I)


def noise_png(seed: int, width: int = 80, height: int = 80) -> bytes:
    """A valid RGB PNG of random pixels: ~20 KB at 80×80 and, like a JPEG, incompressible."""
    rng = random.Random(seed)
    raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))


@dataclass
class Template:
    """A corpus post with its images taken out, split where images can go back in."""

    title: str
    paragraphs: list[str]  # the body cut after each ``</p>``

    @classmethod
    def of(cls, post: CorpusPost) -> Template | None:
        html = _IMAGE_TAGS.sub("", post.html)
        if len(html.encode()) > MAX_BODY_BYTES or find_images(html):
            return None
        parts = [p for p in re.split(r"(?<=</p>)", html) if p.strip()]
        return cls(post.title, parts)

    def body(self, images: list[str]) -> str:
        """The body with one ``<img>`` after each of evenly spaced paragraphs."""
        parts = list(self.paragraphs)
        step = max(1, len(parts) // (len(images) + 1))
        for k, url in reversed(list(enumerate(images, 1))):
            parts.insert(min(len(parts), k * step), f'<p><img src="{url}" alt="图{k}"></p>')
        return "".join(parts)


@dataclass
class Site:
    root: Path
    base: str
    sources: Path
    feeds: list[str] = field(default_factory=list)
    pages: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    page_files: list[Path] = field(default_factory=list)  # uncompressed article pages

    @property
    def urls(self) -> list[str]:
        """Every URL a crawl of the site fetches (robots.txt aside), feeds first."""
        return self.feeds + self.pages + self.images


class Boilerplate:
    """What surrounds a post on a real news page, from the corpus's own words."""

    def __init__(self, posts: list[CorpusPost]) -> None:
        self.titles = [p.title for p in posts]
        self.sentences = [b for p in posts for b in text_blocks(p.html) if 10 <= len(b) <= 200] or ["写得不错。"]

    def head(self, rng: random.Random, title: str) -> str:
        css = "".join(f".c{i}{{margin:{i % 9}px;padding:{i % 7}px;color:#{rng.randrange(0xFFFFFF):06x}}}"
                      for i in range(120))
        state = {"config": {"cdn": "https://static.example.com", "ab": rng.randrange(10 ** 9)},
                 "feed": [{"id": rng.randrange(10 ** 9), "title": rng.choice(self.titles),
                           "views": rng.randrange(10 ** 6)} for _ in range(40)]}
        return (f'<head><meta charset="utf-8"><title>{escape(title)}</title>'
                f'<meta name="viewport" content="width=device-width"><style>{css}</style>'
                f"<script>window.__INITIAL_STATE__={json.dumps(state, ensure_ascii=False)}</script>"
                '<script async src="/static/analytics.js"></script></head>')

    def menu(self, rng: random.Random) -> str:
        sections = "".join(
            f'<li class="sec"><a href="/c/{s}">{escape(self.titles[(s * 7) % len(self.titles)][:6])}</a><ul>'
            + "".join(f'<li><a href="/c/{s}/{k}">{escape(rng.choice(self.titles)[:8])}</a></li>' for k in range(10))
            + "</ul></li>" for s in range(12))
        return f'<header><div class="logo"><a href="/">示例网</a></div><nav><ul class="menu">{sections}</ul></nav></header>'

    def related(self, rng: random.Random, count: int) -> str:
        items = "".join(f'<li><a href="/article/r{rng.randrange(10 ** 6)}.html">{escape(rng.choice(self.titles))}</a>'
                        f'<span class="views">{rng.randrange(10 ** 5)} 阅读</span></li>' for _ in range(count))
        return f'<aside class="sidebar"><h3>热门推荐</h3><ul>{items}</ul></aside>'

    def comment(self, rng: random.Random) -> str:
        user = rng.randrange(10 ** 6)
        return (f'<div class="comment"><div class="user"><a href="/u/{user}">用户{user}</a>'
                f'<span class="time">2022-0{rng.randrange(1, 10)}-1{rng.randrange(10)} 1{rng.randrange(10)}:0{rng.randrange(10)}</span></div>'
                f"<p>{escape(rng.choice(self.sentences))}</p>"
                f'<div class="actions"><a href="#">赞 {rng.randrange(200)}</a> <a href="#">回复</a></div></div>')

    def footer(self) -> str:
        links = " · ".join(f'<a href="/about/{k}">{w}</a>' for k, w in enumerate(
            ["关于我们", "联系我们", "广告服务", "隐私政策", "用户协议", "网站地图", "招聘", "投稿"]))
        return f"<footer><p>{links}</p><p>© 2022 示例网 版权所有 · 京ICP备00000000号</p></footer>"

    def page(self, rng: random.Random, title: str, author: str, date: str, body: str, target: int) -> bytes:
        """An article page of about ``target`` bytes around ``body``."""
        head = self.head(rng, title)
        article = (f'<main><article><h1>{escape(title)}</h1><div class="meta">{escape(author)} · {escape(date)}</div>'
                   f'<div class="content">{body}</div><div class="tags"><a href="/t/1">科技</a> <a href="/t/2">互联网</a></div>'
                   '<section class="share"><a href="/share/wx">分享到微信</a> <a href="/share/wb">分享到微博</a></section>')
        top = f"<!doctype html><html>{head}<body>{self.menu(rng)}<div class=\"layout\">{self.related(rng, 30)}{article}"
        comments: list[str] = []
        size = len(top.encode()) + 2000
        while size < target:
            comments.append(self.comment(rng))
            size += len(comments[-1].encode())
        return (f'{top}<section class="comments"><h3>评论 ({len(comments)})</h3>{"".join(comments)}</section>'
                f"</main></div>{self.footer()}</body></html>").encode()


def build_site(corpus: list[CorpusPost], n: int, root: Path, base: str | list[str]) -> Site:
    """Write an aggregator of ``n`` posts under ``root``, served at ``base``.

    With several bases (one site per host, as an aggregator's sources are), feed ``k`` and its
    pages and images are served from ``base[k % len(base)]``; every host serves the same files.
    """
    bases = [base] if isinstance(base, str) else base
    templates = [t for t in map(Template.of, corpus) if t is not None]
    if not templates:
        raise ValueError("no corpus post fits a benchmark page")
    words = Boilerplate(corpus)
    for sub in ("feeds", "article", "img"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    site = Site(root, bases[0], root / "sources.yaml")
    epoch = datetime(2022, 4, 29, tzinfo=timezone.utc)
    sources = []
    for f in range(0, n, FEED_ENTRIES):
        name = f"bench-{f // FEED_ENTRIES:04d}"
        base = bases[(f // FEED_ENTRIES) % len(bases)]
        items = []
        for i in range(f, min(n, f + FEED_ENTRIES)):
            rng = random.Random(i)
            tpl = templates[i % len(templates)]
            images = [f"/img/{i:06d}-{k}.png" for k in range(IMAGES_PER_POST)]
            for k, path in enumerate(images):
                (root / path.lstrip("/")).write_bytes(noise_png(i * IMAGES_PER_POST + k))
            image_urls = [base + p for p in images]
            site.images += image_urls
            body = tpl.body(image_urls)
            title = f"{tpl.title} （第{i}篇）"
            date = format_datetime(epoch - timedelta(minutes=7 * i), usegmt=True)
            page = words.page(rng, title, name, date, body, rng.randint(*PAGE_KB) * 1024)
            path = root / "article" / f"{i:06d}.html"
            path.write_bytes(page)
            if i % 2:
                path.with_name(path.name + ".gz").write_bytes(gzip.compress(page, 6, mtime=0))
            site.page_files.append(path)
            link = f"{base}/article/{i:06d}.html"
            site.pages.append(link)
            items.append(f"<item><title>{escape(title)}</title><link>{link}</link>"
                         f'<guid isPermaLink="false">bench-{i}</guid><pubDate>{date}</pubDate>'
                         f"<description><![CDATA[{body.replace(']]>', ']]]]><![CDATA[>')}]]></description></item>")
        feed = (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{name}</title>'
                f"<link>{base}/</link>{''.join(items)}</channel></rss>")
        (root / "feeds" / f"{name}.xml").write_text(feed, encoding="utf-8")
        site.feeds.append(f"{base}/feeds/{name}.xml")
        sources.append({"name": name, "url": site.feeds[-1], "categories": ["bench"], "follow_links": True})
    # Post i reuses corpus post i % 43's body: one story to dedup: across, which would merge the
    # site into 43 posts. What is measured is the cost of a post, so each entry is one.
    site.sources.write_text(yaml.safe_dump({"defaults": {"dedup": "within"}, "sources": sources}, sort_keys=False),
                            encoding="utf-8")
    return site
