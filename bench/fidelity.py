"""How much of each post survives archiving: ``python -m bench.fidelity CORPUS_DIR [--json]``.

Builds an aggregator from seed-format posts (bench.corpus), serves it on 127.0.0.1, archives
it with ``postarc crawl`` in a subprocess, and compares every post written with its source:
title, UTC date, paragraph recall (text blocks of the source HTML found in the Markdown) and
image recall (images saved beside the post and present in the WARC). Prints a table per
source and overall; with ``--json`` the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import mean
from typing import Any

from warcio.archiveiterator import ArchiveIterator

from archive.dates import normalize_date
from archive.html import text_blocks
from archive.markdown import read_front_matter
from bench.corpus import build_aggregator, load_corpus, local_image_path
from bench.measure import markdown_image_urls, markdown_plain_text
from crawler.demo.server import SiteServer


def archived_urls(archive: Path) -> set[str]:
    """Target URIs of every 200 response (or revisit) in the archive's WARC files."""
    urls = set()
    for path in (archive / "warc").glob("*.warc.gz"):
        with path.open("rb") as f:
            for rec in ArchiveIterator(f):
                if rec.rec_type in ("response", "revisit") and rec.http_headers and \
                        rec.http_headers.get_statuscode() == "200":
                    urls.add(rec.rec_headers.get_header("WARC-Target-URI"))
    return urls


def measure(archive: Path, agg: Any, base: str) -> dict[str, Any]:
    """Per-post figures, keyed by the post's guid."""
    written = {}
    for md in (archive / "posts").rglob("*.md"):
        fm, body = read_front_matter(md.read_text(encoding="utf-8"))
        written[str(fm.get("guid"))] = (md, fm, body)
    in_warc = archived_urls(archive)
    rows = []
    for post in agg.posts:
        row: dict[str, Any] = {"key": post.key, "source": agg.source_of[post.key], "written": False}
        rows.append(row)
        found = written.get(f"corpus-{post.key}")
        if not found:
            continue
        md, fm, body = found
        plain = markdown_plain_text(body)
        blocks = text_blocks(post.html)
        local = [u for u in markdown_image_urls(body) if not u.startswith(("http://", "https://"))]
        saved = sum((md.parent / u).is_file() for u in local)
        expected_date = normalize_date(post.date_raw, "Asia/Shanghai").value
        row.update(
            written=True,
            title_ok=fm.get("title") == " ".join(post.title.split()),
            date_ok=fm.get("date") == expected_date,
            paragraphs=len(blocks),
            paragraph_recall=(sum(b in plain for b in blocks) / len(blocks)) if blocks else 1.0,
            images=len(post.images),
            images_saved=min(saved, len(post.images)),
            images_in_warc=sum(1 for u in post.images if base + local_image_path(u) in in_warc),
        )
    return {"rows": rows}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r["written"]]
    images = sum(r.get("images", 0) for r in done)
    return {
        "posts": len(rows),
        "written": len(done),
        "titles_ok": sum(r["title_ok"] for r in done),
        "dates_ok": sum(r["date_ok"] for r in done),
        "paragraph_recall_mean": round(mean(r["paragraph_recall"] for r in done), 4) if done else 0.0,
        "paragraph_recall_min": round(min(r["paragraph_recall"] for r in done), 4) if done else 0.0,
        "image_recall_local": round(sum(r["images_saved"] for r in done) / images, 4) if images else 1.0,
        "image_recall_warc": round(sum(r["images_in_warc"] for r in done) / images, 4) if images else 1.0,
    }


def run(corpus: Path, workdir: Path, **options: Any) -> dict[str, Any]:
    posts = load_corpus(corpus)
    archive = workdir / "data"
    with SiteServer() as site:
        agg = build_aggregator(posts, site.base, **options)
        site.routes.update(agg.routes)
        sources = workdir / "sources.yaml"
        sources.write_text(agg.sources_yaml, encoding="utf-8")
        proc = subprocess.run([sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(sources),
                               "--archive", str(archive)], capture_output=True, text=True, timeout=900)
        result = measure(archive, agg, site.base)
    rows = result["rows"]
    by_source = {}
    for name in sorted({r["source"] for r in rows}):
        by_source[name] = summarise([r for r in rows if r["source"] == name])
    return {"exit_code": proc.returncode, "overall": summarise(rows), "by_source": by_source,
            "open_files": len(list((archive / "warc").glob("*.open"))), "rows": rows,
            "stderr_tail": proc.stderr[-2000:] if proc.returncode not in (0, 3) else ""}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fidelity", description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, help="folder of seed-format posts (e.g. ../shared/corpus)")
    parser.add_argument("--gbk-every", type=int, default=4, help="serve every Nth article page in GBK")
    parser.add_argument("--dead-every", type=int, default=7, help="make every Nth article link dead")
    parser.add_argument("--no-hotlink", action="store_true", help="don't protect images against hotlinking")
    parser.add_argument("--keep", type=Path, help="keep the archive in this folder")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args(argv)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="postarc-fidelity-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report = run(args.corpus, workdir, gbk_every=args.gbk_every, dead_every=args.dead_every,
                 hotlink=not args.no_hotlink)
    print(f"{'source':<14} {'posts':>5} {'ok':>4} {'title':>5} {'date':>4} {'para':>7} {'p.min':>6} {'img':>6} {'warc':>6}")
    for name, s in [*report["by_source"].items(), ("OVERALL", report["overall"])]:
        print(f"{name:<14} {s['posts']:>5} {s['written']:>4} {s['titles_ok']:>5} {s['dates_ok']:>4} "
              f"{s['paragraph_recall_mean']:>7.2%} {s['paragraph_recall_min']:>6.0%} "
              f"{s['image_recall_local']:>6.1%} {s['image_recall_warc']:>6.1%}")
    if report["stderr_tail"]:
        print(report["stderr_tail"], file=sys.stderr)
    if args.json:
        print(json.dumps({k: v for k, v in report.items() if k != "rows"}, ensure_ascii=False))


if __name__ == "__main__":
    main()
