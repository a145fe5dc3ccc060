"""A larger local aggregator for WARC tests: one RSS feed, article pages, images.

Article pages carry ~25 KB of varied boilerplate as real ones do; every other page is gzip-encoded,
every third chunked; images are incompressible; one image is served under two URLs (one payload).
"""

from __future__ import annotations

import random
from html import escape

from bench.synthetic import noise_png
from crawler.demo.server import Resource

N_POSTS = 24


def boilerplate(seed: int) -> str:
    """Menus, related links and comments: ~12 KB of varied text, as real article pages carry."""
    rng = random.Random(seed)
    words = ["新闻", "科技", "archive", "feed", "评论", "related", "链接", "更多", "post", "阅读"]
    return "".join(f'<a href="/r/{rng.randrange(10**6)}">{" ".join(rng.choices(words, k=6))}</a>'
                   for _ in range(150))


def aggregator_routes(base: str) -> dict[str, Resource]:
    routes = {"/robots.txt": Resource(b"User-agent: *\nAllow: /\n", "text/plain")}
    items = []
    for i in range(N_POSTS):
        img = f"/img/{i}.png"
        routes[img] = Resource(noise_png(i, 60, 60), "image/png")
        body = (f"<p>{'正文 body text of post %d. ' % i * 60}</p><p><img src=\"{base}{img}\"></p>"
                f"<p><img src=\"{base}/img/logo.png?v={i % 2}\"></p>")
        routes[f"/posts/{i}.html"] = Resource(
            f"<html><head><title>post {i}</title></head><body><nav>{boilerplate(i)}</nav>"
            f"<article><h1>post {i}</h1>{body}</article><aside>{boilerplate(i + 100)}</aside></body></html>".encode(),
            gzip=i % 2 == 0, chunked=i % 3 == 0)
        items.append(f"<item><title>post {i}</title><link>{base}/posts/{i}.html</link><guid>p{i}</guid>"
                     f"<pubDate>Fri, 29 Apr 2022 00:{i:02d}:15 GMT</pubDate>"
                     f"<description>{escape(body)}</description></item>")
    # Two URLs, one payload: the second is a revisit within the same run.
    routes["/img/logo.png"] = Resource(noise_png(999, 40, 40), "image/png")
    feed = f'<?xml version="1.0"?><rss version="2.0"><channel><title>agg</title>{"".join(items)}</channel></rss>'
    routes["/feed.xml"] = Resource(feed.encode(), "application/rss+xml", chunked=True)
    return routes
