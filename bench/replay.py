"""Replay benchmark: ``postarc replay`` on a synthetic archive of N posts.

``python -m bench.replay [--posts 10000] [--captures 20000] [--dir DIR]`` builds (or reuses) an
archive with N Markdown posts (paragraphs drawn from the shared corpus, else random characters)
and their catalogue rows, a WARC file of page captures and its
CDXJ index, then prints as JSON: how long the server takes to answer its first page, how
long the first full-text index build takes, and the latency of a listing, a search, a post
page and a ``/web/`` capture lookup.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

from archive.catalogue import Catalogue, PostRow
from archive.frontmatter import render_post
from archive.replay.index import ensure_index
from archive.warc.writer import HttpExchange, WarcFiles

# Common characters, so that bodies read like (meaningless) Chinese and trigrams repeat as in text.
HANZI = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
         "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好"
         "应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命")
SOURCES = [f"source-{n:02d}" for n in range(12)]
CATEGORIES = ["新闻", "科技", "财经", "体育", "文化"]
BASE = "http://synthetic.example"


CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def _text(rng: random.Random, chars: int) -> str:
    return "".join(rng.choice(HANZI) for _ in range(chars))


def paragraphs() -> list[str]:
    """Real paragraphs (the shared corpus's posts) when there, so the text reads like posts do."""
    if not CORPUS.is_dir():
        return []
    from archive.html import text_blocks
    from bench.corpus import load_corpus

    return [block for post in load_corpus(CORPUS) for block in text_blocks(post.html) if len(block) > 20]


def synthetic_archive(directory: Path, posts: int = 10_000, captures: int = 20_000, seed: int = 7) -> Path:
    """An archive directory with ``posts`` posts and ``captures`` captured pages (reused if built)."""
    if (directory / "state.sqlite").exists():
        return directory
    rng = random.Random(seed)
    pool = paragraphs()
    (directory / "posts").mkdir(parents=True, exist_ok=True)
    catalogue = Catalogue.of_archive(directory)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    catalogue.db.execute("BEGIN")
    for n in range(posts):
        date = start + timedelta(minutes=53 * n)
        path = f"{date:%Y}/{date:%m}/post-{n:05d}"
        title = f"第{n}篇 " + _text(rng, rng.randint(8, 20))
        count = rng.randint(3, 12)
        body = "\n\n".join(rng.sample(pool, min(count, len(pool))) if pool else
                           [_text(rng, rng.randint(60, 240)) for _ in range(count)])
        fields = {"title": title, "categories": [rng.choice(CATEGORIES)], "author": "bench", "comments": False,
                  "date": date, "link": f"{BASE}/p/{n}.html", "guid": f"g{n}", "source": f"{BASE}/feed.xml",
                  "archived": date, "warc": "synthetic.warc.gz"}
        md = directory / "posts" / f"{path}.md"
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(render_post(fields, body), encoding="utf-8")
        catalogue.save_post(PostRow(source=rng.choice(SOURCES), guid=f"g{n}", title=title, path=path,
                                    archived=date.strftime("%Y-%m-%dT%H:%M:%SZ"), link=f"{BASE}/p/{n}.html",
                                    date=date.strftime("%Y-%m-%dT%H:%M:%SZ"), categories=fields["categories"]))
    catalogue.db.execute("COMMIT")
    catalogue.close()
    if captures:
        files = WarcFiles(directory / "warc", prefix="SYNTH")
        for n in range(captures):
            html = f"<html><body><h1>page {n}</h1><p>{_text(rng, 200)}</p></body></html>".encode()
            files.write_exchange(HttpExchange(
                url=f"{BASE}/p/{n % max(posts, 1)}.html", method="GET", request_headers=[("Host", "synthetic.example")],
                status=200, reason="OK", response_headers=[("Content-Type", "text/html; charset=utf-8")], body=html,
                date=start + timedelta(seconds=n)))
        files.close()
        ensure_index(directory)
    return directory


def _timed_get(url: str) -> tuple[float, int, bytes]:
    import urllib.error
    import urllib.request

    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=120) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return time.perf_counter() - t0, status, body


def measure(archive: Path) -> dict[str, float | int]:
    from tests.replay_helpers import start_replay

    t0 = time.perf_counter()
    server = start_replay(archive)
    announced = time.perf_counter() - t0
    first, status, _ = _timed_get(server.base + "/")
    result: dict[str, float | int] = {"start_to_listening_s": round(announced, 3),
                                      "start_to_first_page_s": round(announced + first, 3), "first_page_status": status}
    t1 = time.perf_counter()
    server.wait_for_search(timeout=600)
    result["search_index_build_s"] = round(time.perf_counter() - t1, 3)
    for name, path in [("listing", "/?page=3"), ("listing_filtered", "/?source=source-03&from=2024-03-01"),
                       ("search_trigram", "/?q=" + quote("第500篇")), ("search_two_chars", "/?q=" + quote("国家")),
                       ("post_page", "/posts/2024/01/post-00007"), ("web_capture", f"/web/20240101000500/{BASE}/p/7.html")]:
        times = [_timed_get(server.base + path)[0] for _ in range(5)]
        result[f"{name}_median_ms"] = round(statistics.median(times) * 1000, 1)
    server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--captures", type=int, default=20_000)
    parser.add_argument("--dir", type=Path, help="where to build (and keep) the archive")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = args.dir or Path(tmp) / "archive"
        t0 = time.perf_counter()
        archive = synthetic_archive(directory, args.posts, args.captures)
        built = time.perf_counter() - t0
        result = {"posts": args.posts, "captures": args.captures, "archive_build_s": round(built, 1), **measure(archive)}
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
