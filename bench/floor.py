"""What the libraries an archiver must call cost beyond ``limit_s``: ``python -m bench.floor --posts N [--json]``.

``bench.throughput``'s ``limit_s`` counts two costs: Scrapy fetching every URL and trafilatura
reading every article page. An archiver that does what design.md asks also parses every feed
(feedparser), writes every exchange as WARC records (warcio) and indexes them (cdxj-indexer),
turns every body into Markdown (markdownify), writes front matter (PyYAML) and starts worker
processes that import trafilatura, so that extraction leaves the reactor. This measures those
calls on the site ``bench.throughput`` generates (same generator, same N), one after another in
this process, each at its cheapest:

- ``feedparser_cpu_s``: ``feedparser.parse`` of every feed, neither sanitizing nor resolving
  the entries' HTML (what an archiver that cleans HTML itself would skip);
- ``warc_cpu_s``: every response and request record (pages as served: half of them gzip-encoded),
  gzip level 1, payloads compressed already stored;
- ``cdxj_cpu_s``: cdxj-indexer's line for each of those records, made from the record in memory
  (``archive.cdxj.RecordLines``; reading the WARC back costs about six times as much);
- ``markdown_cpu_s``: ``markdownify.markdownify`` of every post body;
- ``yaml_cpu_s``: one front matter per post, with libyaml's C emitter where it is installed;
- ``worker_start_cpu_s``: one interpreter per core importing trafilatura, markdownify and lxml;
- ``library_cpu_s``: their sum; ``extract_cpu_s`` as ``bench.throughput`` measures it.

With ``--throughput FILE`` (the JSON line of ``python -m bench.throughput --posts N --json``, same
N) it adds ``floor_s`` = max(``fetch_s``, (``fetch_cpu_s`` + ``extract_cpu_s`` + ``library_cpu_s``)
/ cores), the least wall time of any archiver that makes these calls on this machine, and
``max_efficiency`` = ``limit_s`` / ``floor_s``: the efficiency no such archiver can exceed here.
With ``--json`` the last line of stdout is one JSON object of these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import feedparser
import yaml
from markdownify import markdownify
from warcio.archiveiterator import ArchiveIterator

from archive.cdxj import RecordLines
from archive.warc.writer import HttpExchange, WarcFiles
from bench.corpus import load_corpus
from bench.synthetic import Site, build_site
from bench.throughput import DEFAULT_CORPUS, extract_cpu

KEYS = ("posts", "extract_cpu_s", "feedparser_cpu_s", "warc_cpu_s", "cdxj_cpu_s", "markdown_cpu_s", "yaml_cpu_s",
        "worker_start_cpu_s", "library_cpu_s")
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def cpu_of(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def served(site: Site, url: str) -> bytes:
    """The file the site serves at ``url`` (``http://host:port/<path>``)."""
    return (site.root / url.split("/", 3)[3]).read_bytes()


def exchanges(site: Site) -> list[tuple[str, bytes, list[tuple[str, str]]]]:
    """(URL, body as received, response headers) of everything a crawl of the site fetches."""
    out = []
    for url in site.feeds:
        out.append((url, served(site, url), [("Content-Type", "application/rss+xml")]))
    for url, path in zip(site.pages, site.page_files):
        packed = path.with_name(path.name + ".gz")
        if packed.exists():
            out.append((url, packed.read_bytes(), [("Content-Type", "text/html"), ("Content-Encoding", "gzip")]))
        else:
            out.append((url, path.read_bytes(), [("Content-Type", "text/html")]))
    for url in site.images:
        out.append((url, served(site, url), [("Content-Type", "image/png")]))
    return out


def write_warc(site: Site, directory: Path) -> None:
    files = WarcFiles(directory, gzip_level=1)
    for url, body, headers in exchanges(site):
        files.write_exchange(HttpExchange(
            url=url, method="GET", request_headers=[("Host", "127.0.0.1"), ("User-Agent", "bench")],
            request_body=b"", status=200, reason="OK",
            response_headers=[("Server", "nginx"), *headers, ("Content-Length", str(len(body)))],
            body=body, protocol="HTTP/1.1", ip_address="127.0.0.1", date=datetime.now(timezone.utc)))
    files.close()


def index_in_memory(directory: Path) -> float:
    """CPU seconds of ``RecordLines`` over the records of the WARC files in ``directory``, read
    into memory first (not counted)."""
    records = []
    for path in sorted(directory.glob("*.warc.gz")):
        with path.open("rb") as f:
            it = ArchiveIterator(f)
            for record in it:
                record.content_stream().read()
                records.append((record, path.name, it.get_record_offset(), it.get_record_length()))
    lines = RecordLines()
    return cpu_of(lambda: [lines.add(*entry) for entry in records])


def worker_start_cpu(cores: int) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(cores):
        subprocess.run([sys.executable, "-c", "import trafilatura, markdownify, lxml.html"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(posts: int, corpus: Path, workdir: Path) -> dict[str, float | int]:
    say = lambda msg: print(f"[floor] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    cores = len(os.sched_getaffinity(0))
    say(f"generating {posts} posts in {workdir}")
    site = build_site(load_corpus(corpus), posts, workdir / "site", "http://127.0.0.1:8000")
    feeds = [served(site, url) for url in site.feeds]
    say("feedparser, warcio, cdxj-indexer, markdownify, PyYAML, worker start-up; trafilatura")
    parsed: list[feedparser.FeedParserDict] = []
    figures: dict[str, float | int] = {"posts": posts}
    figures["feedparser_cpu_s"] = cpu_of(lambda: parsed.extend(
        feedparser.parse(data, sanitize_html=False, resolve_relative_uris=False) for data in feeds))
    entries = [entry for feed in parsed for entry in feed.entries]
    figures["warc_cpu_s"] = cpu_of(lambda: write_warc(site, workdir / "warc"))
    figures["cdxj_cpu_s"] = index_in_memory(workdir / "warc")
    figures["markdown_cpu_s"] = cpu_of(lambda: [markdownify(entry.summary) for entry in entries])
    now = datetime.now(timezone.utc)
    matter = [{"title": e.title, "categories": ["bench"], "author": "bench", "date": now, "link": e.link,
               "guid": e.id, "source": site.feeds[0], "archived": now, "warc": "POSTARC-x.warc.gz"} for e in entries]
    figures["yaml_cpu_s"] = cpu_of(lambda: [yaml.dump(m, Dumper=_Dumper, allow_unicode=True, sort_keys=False)
                                            for m in matter])
    figures["worker_start_cpu_s"] = worker_start_cpu(cores)
    figures["extract_cpu_s"] = extract_cpu(site)
    figures["library_cpu_s"] = sum(v for k, v in figures.items() if k.endswith("_cpu_s") and k != "extract_cpu_s")
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}


def ceiling(figures: dict[str, float | int], throughput: dict[str, float], cores: int) -> dict[str, float]:
    """``floor_s`` and ``max_efficiency`` against a throughput run's fetch and limit figures."""
    cpu = throughput["fetch_cpu_s"] + throughput["extract_cpu_s"] + figures["library_cpu_s"]
    floor = max(throughput["fetch_s"], cpu / cores)
    return {"floor_s": round(floor, 2), "max_efficiency": round(throughput["limit_s"] / floor, 3)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000, help="posts in the generated aggregator (default 1000)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"seed-format posts (default {DEFAULT_CORPUS})")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--throughput", type=Path, help="a file whose last line is bench.throughput's JSON (same N)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="postarc-floor-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        figures = measure(args.posts, args.corpus, workdir.resolve())
    if args.throughput:
        throughput = json.loads(args.throughput.read_text().strip().splitlines()[-1])
        figures.update(ceiling(figures, throughput, len(os.sched_getaffinity(0))))
    for key, value in figures.items():
        print(f"{key:<22} {value}")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
