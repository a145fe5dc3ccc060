"""CPU ms a pool worker spends per post: ``python -m bench.worker [CORPUS_DIR] [--json]``.

What the worker pool runs for each post, over every corpus post, in this process:
``feed`` is ``choose_body`` on the feed's HTML alone plus ``render_body`` to Markdown (a full
feed); ``page`` is ``choose_body`` with the post's article page (bench.corpus's page: navigation,
sidebar, comments) plus ``render_body`` of the chosen body (a summary feed, or follow_links).
Each figure is the best of ``--repeat`` passes over the corpus (CPU time, so that other
processes on the machine count less), divided by the number of posts.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from archive.extract import choose_body
from archive.markdown import render_body
from bench.corpus import article_page, load_corpus, summary_html
from bench.throughput import DEFAULT_CORPUS

BASE = "http://127.0.0.1:8000/p/"


def _best_ms(work: Callable[[], None], posts: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return round(best * 1000 / posts, 2)


def measure(corpus: Path, repeat: int = 5) -> dict[str, float]:
    posts = load_corpus(corpus)
    feeds = [(post.html, BASE + post.key) for post in posts]
    pages = [(summary_html(post), article_page(post, post.html), BASE + post.key) for post in posts]

    def feed() -> None:
        for html, url in feeds:
            render_body(choose_body(html, url).html, "markdown", {})

    def page() -> None:
        for summary, page_html, url in pages:
            render_body(choose_body(summary, url, page_html, url).html, "markdown", {})

    feed()  # imports and caches warm
    return {"posts": len(posts), "feed_ms": _best_ms(feed, len(posts), repeat),
            "page_ms": _best_ms(page, len(posts), repeat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(args.corpus, args.repeat)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['posts']} posts: {figures['feed_ms']} ms a feed body, {figures['page_ms']} ms with its page")


if __name__ == "__main__":
    main()
