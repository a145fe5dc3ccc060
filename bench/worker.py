"""CPU ms a pool worker spends per post: ``python -m bench.worker [CORPUS_DIR] [--json]``.

What the worker pool runs for each post, over every corpus post, in this process:
``feed`` is ``choose_body`` on the feed's HTML alone plus ``render_body`` to Markdown (a full
feed); ``page`` is ``choose_body`` with the post's article page (bench.corpus's page: navigation,
sidebar, comments) plus ``render_body`` of the chosen body (a summary feed, or follow_links);
``site`` is ``page`` over the first ``--site`` posts (default 60) of the site bench.throughput
crawls (bench.synthetic: 60–120 KB pages, whose parsing and pruning the corpus pages, a few KB,
hardly show), built in a temporary folder. Each figure is the best of ``--repeat`` passes (CPU
time, so that other processes on the machine count less), divided by the number of posts.

``--steps`` splits ``site`` into the steps a page's post goes through, against the yardstick
``bench.throughput`` divides by (``trafilatura.extract`` of the page as a string, its
``extract_cpu_s``): ``STEPS`` says what each one is.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lxml.html
import trafilatura
from lxml import etree

from archive import extract
from archive.extract import choose_body
from archive.html import clean_fragment, normalise_pre, parse_sized
from archive.markdown import render_body
from archive.stories import sketch
from archive.versions import body_text
from bench.corpus import CorpusPost, article_page, load_corpus, summary_html
from bench.synthetic import build_site
from bench.throughput import DEFAULT_CORPUS, TRAFILATURA_OPTIONS

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


def measure(corpus: Path, repeat: int = 5, site: int = 60, with_steps: bool = False) -> dict[str, float]:
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
        if with_steps:
            figures.update(steps(synthetic, repeat))
    return figures


STEPS = {
    "trafilatura_ms": "the yardstick: trafilatura.extract of the page as a string (libxml2 parses it)",
    "libxml2_parse_ms": "lxml.html.document_fromstring of the page: the parse inside the yardstick",
    "html5_parse_ms": "archive.html.parse_sized: the page parsed as browsers do (lexbor), read into lxml",
    "page_prepare_ms": "images' stand-ins, loose text in paragraphs, <pre> and <code> settled, before extraction",
    "page_extract_ms": "trafilatura on the prepared tree (recall focus)",
    "page_main_ms": "all of the page's path: parse, prepare, extract, the balanced re-run of short results",
    "feed_clean_ms": "the feed's body cleaned (archive.html.clean_fragment)",
    "sketch_ms": "the story sketch of the body's text and the text its version hash is made of",
    "render_ms": "the chosen body to Markdown (render_body)",
    "choose_ms": "choose_body with the page: the page's path, the feed's cleaning, the sketch",
}


def steps(synthetic: list[tuple[str, str, str]], repeat: int) -> dict[str, float]:
    """``STEPS``, CPU ms per post over ``site_posts``' posts, and ``rerun_share``: the share of
    pages whose recall-focused result is short enough to be extracted again.

    Each pass runs every step once, in turn, and each step keeps its best pass: this machine's
    speed drifts within minutes, and steps timed one after another would compare moments.
    """
    Post = tuple[str, str, str]

    def unchanged(post: Post) -> Post:
        return post

    def parsed(post: Post) -> tuple[lxml.html.HtmlElement, str]:
        return parse_sized(post[2])[0], post[1]

    def prepare(root: lxml.html.HtmlElement, url: str) -> None:
        extract._stand_in_images(root, url)
        extract._paragraphize(root)
        normalise_pre(root)
        extract._mark_code(root)

    def prepared(post: Post) -> tuple[lxml.html.HtmlElement, str]:
        root, url = parsed(post)
        prepare(root, url)
        return root, url

    bodies = {post[1]: choose_body(post[0], post[1], post[2], post[1]) for post in synthetic}
    # step: (work on one input, the input made from a post outside the clock: trees are used up)
    work: dict[str, tuple[Callable[[Any], object], Callable[[Post], Any]]] = {
        "trafilatura_ms": (lambda p: trafilatura.extract(p[2], url=p[1], **TRAFILATURA_OPTIONS), unchanged),
        "libxml2_parse_ms": (lambda p: lxml.html.document_fromstring(p[2]), unchanged),
        "html5_parse_ms": (lambda p: parse_sized(p[2]), unchanged),
        "page_prepare_ms": (lambda tree: prepare(*tree), parsed),
        "page_extract_ms": (lambda tree: extract._extract(tree[0], tree[1], True), prepared),
        "page_main_ms": (lambda p: extract._page_main(p[2], p[1]), unchanged),
        "feed_clean_ms": (lambda p: clean_fragment(p[0], p[1]), unchanged),
        "sketch_ms": (lambda body: (sketch(body.text), body_text(body.html)), lambda p: _Sketched(bodies[p[1]].html)),
        "render_ms": (lambda html: render_body(html, "markdown", {}), lambda p: bodies[p[1]].html),
        "choose_ms": (lambda p: choose_body(p[0], p[1], p[2], p[1]), unchanged),
    }
    best = dict.fromkeys(work, float("inf"))
    for _ in range(repeat):
        for step, (run, make) in work.items():
            inputs = [make(post) for post in synthetic]
            start = time.process_time()
            for one in inputs:
                run(one)
            best[step] = min(best[step], time.process_time() - start)
    figures = {step: round(seconds * 1000 / len(synthetic), 3) for step, seconds in best.items()}
    mains = [extract._page_main(page, url)[0] for _, url, page in synthetic]
    short = sum(1 for main in mains if main is None
                or len(" ".join("".join(main.itertext()).split())) < extract.RECALL_MIN_CHARS)
    return {**figures, "rerun_share": round(short / len(synthetic), 3)}


class _Sketched:
    """A chosen body and its text, as ``choose_body`` has them when it sketches."""

    def __init__(self, html: str) -> None:
        self.html = html
        self.text = " ".join(clean_fragment(html, None).texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--site", type=int, default=60, help="posts of bench.throughput's site (0: none)")
    parser.add_argument("--steps", action="store_true", help="split the site's posts into STEPS (needs --site)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.steps and args.site <= 0:
        parser.error("--steps splits the site's posts: give --site N, N > 0")
    figures = measure(args.corpus, args.repeat, args.site, with_steps=args.steps)
    if args.json:
        print(json.dumps(figures))
    else:
        print(f"{figures['posts']} posts: {figures['feed_ms']} ms a feed body, {figures['page_ms']} ms with its page"
              + (f"; {args.site} of bench.throughput's posts: {figures['site_ms']} ms" if "site_ms" in figures else ""))
        for key, what in STEPS.items() if args.steps else ():
            print(f"  {key:18s} {figures[key]:7.3f}  {what}")


if __name__ == "__main__":
    main()
