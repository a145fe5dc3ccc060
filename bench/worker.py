"""CPU ms a pool worker spends per post: ``python -m bench.worker [CORPUS_DIR] [--json]``.

What the worker pool runs for each post, over every corpus post, in this process:
``feed`` is ``choose_body`` on the feed's HTML alone plus ``render_body`` to Markdown (a full
feed); ``page`` is ``choose_body`` with the post's article page (bench.corpus's page: navigation,
sidebar, comments) plus ``render_body`` of the chosen body (a summary feed, or follow_links);
``site`` is ``page`` over the first ``--site`` posts (default 60) of the site bench.throughput
crawls (bench.synthetic: 60–120 KB pages, whose parsing and pruning the corpus pages, a few KB,
hardly show), built in a temporary folder. Each figure is the best of ``--repeat`` passes (CPU
time, so that other processes on the machine count less), divided by the number of posts.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from archive.extract import choose_body
from archive.markdown import render_body
from bench.corpus import CorpusPost, article_page, load_corpus, summary_html
from bench.synthetic import build_site
from bench.throughput import DEFAULT_CORPUS

BASE = "http://127.0.0.1:8000/p/"


def _best_ms(work: Callable[[], None], posts: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return round(best * 1000 / posts, 2)


def site_posts(posts: list[CorpusPost], n: int, root: Path) -> list[tuple[str, str, str]]:
    """(feed body, link, article page) of the first ``n`` posts of bench.synthetic's site."""
    site = build_site(posts, n, root, BASE.rstrip("/"))
    pages = dict(zip(site.pages, site.page_files))
    found = []
    for feed in sorted((root / "feeds").glob("*.xml")):
        for item in etree.parse(str(feed)).iter("item"):
            link = item.findtext("link")
            found.append((item.findtext("description"), link, pages[link].read_text(encoding="utf-8")))
    return found


def measure(corpus: Path, repeat: int = 5, site: int = 60) -> dict[str, float]:
    posts = load_corpus(corpus)
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as tmp:
        synthetic = site_posts(posts, site, Path(tmp)) if site else []
    feeds = [(post.html, BASE + post.key) for post in posts]
    pages = [(summary_html(post), article_page(post, post.html), BASE + post.key) for post in posts]

    def feed() -> None:
        for html, url in feeds:
            render_body(choose_body(html, url).html, "markdown", {})

    def page() -> None:
        for summary, page_html, url in pages:
            render_body(choose_body(summary, url, page_html, url).html, "markdown", {})

    def site_page() -> None:
        for feed_html, url, page_html in synthetic:
            render_body(choose_body(feed_html, url, page_html, url).html, "markdown", {})

    feed()  # imports and caches warm
    figures = {"posts": len(posts), "feed_ms": _best_ms(feed, len(posts), repeat),
               "page_ms": _best_ms(page, len(posts), repeat)}
    if synthetic:
        site_page()
        figures["site_ms"] = _best_ms(site_page, len(synthetic), repeat)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--site", type=int, default=60, help="posts of bench.throughput's site (0: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.corpus, args.repeat, args.site)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['posts']} posts: {figures['feed_ms']} ms a feed body, {figures['page_ms']} ms with its page"
              + (f"; {args.site} of bench.throughput's posts: {figures['site_ms']} ms" if "site_ms" in figures else ""))


if __name__ == "__main__":
    main()
