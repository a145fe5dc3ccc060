"""How much of each post survives archiving: ``python -m bench.fidelity CORPUS_DIR [--json]``.

Builds an aggregator from seed-format posts (bench.corpus), serves it on 127.0.0.1 (pages and
feeds on one port, images on another: another origin), archives it with ``postarc crawl`` in a
subprocess, and compares every post written with its source: title, UTC date, paragraph recall
(text blocks of the source HTML found in the Markdown), image recall (each image's own bytes
saved beside the post, and its 200 response in the WARC), mojibake in titles and bodies, and
page boilerplate in bodies. Prints a table per source and overall, then what the site made hard
(charsets, dead links, summary feeds, hotlink refusals) and how it went; with ``--json`` the
last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter
from pathlib import Path
from statistics import mean
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from archive.dates import normalize_date
from archive.html import text_blocks
from archive.frontmatter import read_front_matter
from bench.corpus import BOILERPLATE, Aggregator, build_aggregator, image_bytes, image_path, load_corpus
from bench.measure import markdown_image_urls, markdown_plain_text, mojibake
from crawler.demo.server import SiteServer


def warc_statuses(archive: Path) -> dict[str, list[int]]:
    """Target URI -> HTTP status of each response (or revisit) record, in file order."""
    statuses: dict[str, list[int]] = {}
    for path in sorted((archive / "warc").glob("*.warc.gz")):
        with path.open("rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type in ("response", "revisit") and rec.http_headers:
                    uri = rec.rec_headers.get_header("WARC-Target-URI")
                    statuses.setdefault(uri, []).append(int(rec.http_headers.get_statuscode()))
    return statuses


def body_sources(archive: Path) -> dict[str, str]:
    """guid -> "feed" or "page", as the catalogue recorded it."""
    with sqlite3.connect(archive / "state.sqlite") as db:
        return dict(db.execute("SELECT guid, body_source FROM posts"))


def measure(archive: Path, agg: Aggregator, image_base: str) -> list[dict[str, Any]]:
    """One row of figures per corpus post."""
    written = {}
    for md in (archive / "posts").rglob("*.md"):
        fm, body = read_front_matter(md.read_text(encoding="utf-8"))
        written[str(fm.get("guid"))] = (md, fm, body)
    statuses = warc_statuses(archive)
    sources = body_sources(archive)
    rows = []
    for post in agg.posts:
        row: dict[str, Any] = {"key": post.key, "source": agg.source_of[post.key], "written": False,
                               "charset": agg.charset_of.get(post.key, "utf-8"), "dead": post.key in agg.dead,
                               "summary_feed": post.key in agg.summary}
        rows.append(row)
        found = written.get(f"corpus-{post.key}")
        if not found:
            continue
        md, fm, body = found
        plain = markdown_plain_text(body)
        blocks = text_blocks(post.html)
        saved = {hashlib.sha256((md.parent / u).read_bytes()).hexdigest()
                 for u in markdown_image_urls(body) if not u.startswith(("http://", "https://"))
                 and (md.parent / u).is_file()}
        urls = [image_base + image_path(u) for u in post.images]
        row.update(
            written=True,
            title_ok=fm.get("title") == " ".join(post.title.split()),
            date_ok=fm.get("date") == normalize_date(post.date_raw, "Asia/Shanghai").value,
            body_source=sources.get(f"corpus-{post.key}"),
            paragraphs=len(blocks),
            paragraph_recall=(sum(b in plain for b in blocks) / len(blocks)) if blocks else 1.0,
            images=len(post.images),
            images_saved=sum(hashlib.sha256(image_bytes(u)).hexdigest() in saved for u in post.images),
            images_in_warc=sum(200 in statuses.get(u, []) for u in urls),
            hotlink_403=sum(403 in statuses.get(u, []) for u in urls),
            hotlink_retry_ok=sum(statuses.get(u, [])[:2] == [403, 200] for u in urls),
            mojibake=mojibake(str(fm.get("title", "")) + "\n" + body),
            boilerplate=[b for b in BOILERPLATE if b in plain],
        )
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r["written"]]
    images = sum(r["images"] for r in done)
    recall = [r["paragraph_recall"] for r in done]
    return {
        "posts": len(rows),
        "written": len(done),
        "titles_ok": sum(r["title_ok"] for r in done),
        "dates_ok": sum(r["date_ok"] for r in done),
        "paragraph_recall_mean": round(mean(recall), 4) if done else 0.0,
        "paragraph_recall_min": round(min(recall), 4) if done else 0.0,
        "images": images,
        "image_recall_local": round(sum(r["images_saved"] for r in done) / images, 4) if images else 1.0,
        "image_recall_warc": round(sum(r["images_in_warc"] for r in done) / images, 4) if images else 1.0,
        "posts_with_mojibake": sum(bool(r["mojibake"]) for r in done),
        "posts_with_boilerplate": sum(bool(r["boilerplate"]) for r in done),
    }


def conditions(rows: list[dict[str, Any]], agg: Aggregator) -> dict[str, Any]:
    """What the site made hard, and how the archive coped with each."""
    done = [r for r in rows if r["written"]]
    page_bodies = [r for r in done if r["body_source"] == "page"]
    return {
        "pages_by_charset": dict(Counter(r["charset"] for r in rows if not r["dead"])),
        "legacy_charset_page_bodies": sum(r["charset"] != "utf-8" for r in page_bodies),
        "legacy_charset_posts_with_mojibake": sum(bool(r["mojibake"]) for r in done if r["charset"] != "utf-8"),
        "gbk_feeds": len(agg.gbk_feeds),
        "dead_links": len(agg.dead),
        "dead_link_posts_written": sum(r["dead"] for r in done),
        "summary_feeds": len(agg.summary),
        "summary_feeds_replaced_by_page": sum(r["summary_feed"] and r["body_source"] == "page" for r in done),
        "full_feeds_replaced_by_page": sum(not r["summary_feed"] and r["body_source"] == "page" for r in done),
        "page_body_recall_mean": round(mean(r["paragraph_recall"] for r in page_bodies), 4) if page_bodies else None,
        "hotlink_protected_images": len(agg.hotlinked),
        "hotlink_403": sum(r["hotlink_403"] for r in done),
        "hotlink_403_then_200": sum(r["hotlink_retry_ok"] for r in done),
    }


def run(corpus: Path, workdir: Path, **options: Any) -> dict[str, Any]:
    """Build, serve, crawl and measure; ``options`` go to ``bench.corpus.build_aggregator``."""
    posts = load_corpus(corpus)
    archive = workdir / "data"
    with SiteServer() as site, SiteServer() as images:
        agg = build_aggregator(posts, site.base, images.base, **options)
        site.routes.update(agg.routes)
        images.routes.update(agg.image_routes)
        sources = workdir / "sources.yaml"
        sources.write_text(agg.sources_yaml, encoding="utf-8")
        proc = subprocess.run([sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources),
                               "--archive", str(archive)], capture_output=True, text=True, timeout=900)
        rows = measure(archive, agg, images.base)
    by_source = {name: summarise([r for r in rows if r["source"] == name])
                 for name in sorted({r["source"] for r in rows})}
    return {"exit_code": proc.returncode, "overall": summarise(rows), "conditions": conditions(rows, agg),
            "by_source": by_source, "open_files": len(list((archive / "warc").glob("*.open"))), "rows": rows,
            "stderr_tail": proc.stderr[-2000:] if proc.returncode not in (0, 3) else ""}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="folder of seed-format posts (e.g. ../shared/corpus)")
    parser.add_argument("--charset-every", type=int, default=4,
                        help="serve every Nth article page in a legacy charset (GBK, GB18030, Big5…)")
    parser.add_argument("--dead-every", type=int, default=7, help="make every Nth article link dead")
    parser.add_argument("--summary-every", type=int, default=5, help="every Nth feed entry carries only a summary")
    parser.add_argument("--gbk-feed-every", type=int, default=3, help="serve every Nth source's feed in GBK")
    parser.add_argument("--no-hotlink", action="store_true", help="don't protect images against hotlinking")
    parser.add_argument("--keep", type=Path, help="keep the archive in this folder")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="postarc-fidelity-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = run(args.corpus, workdir, charset_every=args.charset_every, dead_every=args.dead_every,
                 summary_every=args.summary_every, gbk_feed_every=args.gbk_feed_every, hotlink=not args.no_hotlink)
    print(f"{'source':<18} {'posts':>5} {'ok':>4} {'title':>5} {'date':>4} {'para':>7} {'p.min':>6} "
          f"{'img':>6} {'warc':>6} {'moji':>4} {'boil':>4}")
    for name, s in [*report["by_source"].items(), ("OVERALL", report["overall"])]:
        print(f"{_pad(name, 18)} {s['posts']:>5} {s['written']:>4} {s['titles_ok']:>5} {s['dates_ok']:>4} "
              f"{s['paragraph_recall_mean']:>7.2%} {s['paragraph_recall_min']:>6.0%} "
              f"{s['image_recall_local']:>6.1%} {s['image_recall_warc']:>6.1%} "
              f"{s['posts_with_mojibake']:>4} {s['posts_with_boilerplate']:>4}")
    print()
    for key, value in report["conditions"].items():
        print(f"{key:<40} {value}")
    if report["stderr_tail"]:
        print(report["stderr_tail"], file=sys.stderr)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}, ensure_ascii=False))


def _pad(text: str, width: int) -> str:
    """``text`` padded to ``width`` terminal columns (CJK characters take two)."""
    columns = sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)
    return text + " " * max(width - columns, 0)


if __name__ == "__main__":
    main()
