"""How close a crawl comes to the machine's limit: ``python -m bench.throughput --posts N [--json]``.

Generates an aggregator of N posts (bench.synthetic), its sources spread over ``--hosts`` K
loopback hosts (127.0.0.1 … 127.0.0.K, default 4: an aggregator's sources are many sites),
serves it with nginx (bench.nginx; a Python server where nginx is missing) and measures, in one
run:

- ``fetch_s``, ``fetch_cpu_s``: plain Scrapy fetching every URL the full crawl fetched (the
  targets of its WARC ``request`` records), with the project's concurrency and nothing else
  (bench.fetch_spider), wall and CPU seconds;
- ``extract_cpu_s``: CPU seconds of trafilatura (``archive.extract.extract_page``) over every
  article page, in this process;
- ``limit_s`` = max(fetch_s, (fetch_cpu_s + extract_cpu_s) / cores): no archiver built on
  these libraries can be faster on this machine;
- ``full_s``: ``postarc crawl`` into a fresh archive; ``efficiency`` = limit_s / full_s;
- ``capture_overhead``: full_s / the same crawl with ``WARC_ENABLED=False``;
- ``peak_rss_mb``: the largest sum of RSS over the crawl's process tree (pool workers
  included), sampled every 0.1 s during the full crawl;
- ``incremental_s``: a second crawl of the unchanged site into the same archive;
- ``posts`` (Markdown files written) and ``posts_per_s``;
- ``peer_s``: the toolchain a user would script for the same site, timed in the same run:
  wget with ``--warc-file`` over every URL the crawl fetched (one connection, gzipped WARC),
  then the trafilatura CLI (``--markdown --images --parallel <cores>``) over the article
  pages wget saved; ``peer_ratio`` = full_s / peer_s;
- ``single_process_s`` and ``two_processes_s``: the full crawl with ``--processes 1`` and
  ``--processes 2`` (the crawl above uses the default, one process per two cores, splitting
  the sources by host: on 2 cores, one); ``processes_gain`` = single_process_s / two_processes_s;
- ``cpu_ms_per_post``: user + system CPU of the whole ``postarc crawl`` process tree per post;
  ``cpu_ratio`` = that CPU / (fetch_cpu_s + extract_cpu_s): what postarc spends against what
  plain fetching and trafilatura need for the same work (absolute times vary between
  machines, this ratio much less).

Every run is a subprocess, so its wall time includes interpreter start-up and its CPU time
(``getrusage`` of children) includes its pool workers. With ``--json`` the last line of
stdout is one JSON object with exactly the keys above.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import scrapy
import trafilatura
from warcio.archiveiterator import ArchiveIterator

from bench.corpus import load_corpus
from bench.nginx import StaticServer, free_port_on
from bench.profile import report as profile_report, summarise
from bench.synthetic import Site, build_site

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = Path(os.environ.get("POSTARC_CORPUS", REPO.parent / "shared" / "corpus"))
# What archive.extract.extract_page asks of trafilatura.
TRAFILATURA_OPTIONS = {"output_format": "xml", "include_images": True, "include_links": True, "include_tables": True,
                       "include_formatting": True, "include_comments": False, "favor_recall": True}
PROFILE_RATE = 100  # py-spy samples per second and thread
KEYS = ("fetch_s", "fetch_cpu_s", "extract_cpu_s", "limit_s", "full_s", "efficiency", "capture_overhead",
        "peak_rss_mb", "incremental_s", "posts", "posts_per_s", "peer_s", "peer_ratio", "cpu_ms_per_post",
        "cpu_ratio", "single_process_s", "two_processes_s", "processes_gain")


@dataclass
class Run:
    wall_s: float
    cpu_s: float  # user + system of the process and every descendant it waited for
    sys_s: float  # the system part of cpu_s
    peak_rss_mb: float
    own_cpu_s: float  # the process itself, without its children (sampled runs only)
    stdout: str
    log: str


class TreeRss:
    """Samples the summed RSS of a process and all its descendants from a thread.

    Also keeps each process's last CPU times, to tell the crawl's own CPU from its workers'.
    """

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for p in [self.root, *self.root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                        times = p.cpu_times()
                        self.cpu[p.pid] = times.user + times.system
                    except psutil.Error:
                        pass  # a worker that just exited
            except psutil.Error:
                return  # the root exited
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def stop(self) -> tuple[float, float]:
        """Peak RSS (MiB) and the CPU seconds the root process itself used."""
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20, self.cpu.get(self.root.pid, 0.0)


def run(cmd: list[str], log: Path, *, sample: bool = False, cwd: Path | None = None) -> Run:
    """Run ``cmd`` to its end; fail loudly (with its log) unless it exits 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=cwd)
        rss = TreeRss(proc.pid) if sample else None
        stdout, _ = proc.communicate()
    wall = time.perf_counter() - start
    peak, own_cpu = rss.stop() if rss else (0.0, 0.0)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = log.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{text[-3000:]}")
    system = after.ru_stime - before.ru_stime
    return Run(wall, after.ru_utime - before.ru_utime + system, system, peak, own_cpu, stdout, text)


def extract_cpu(site: Site) -> float:
    """CPU seconds trafilatura takes over every article page, one after the other.

    trafilatura alone, with the options ``archive.extract`` gives it: what postarc does
    around it (clean-up, choosing between feed and page) is postarc's cost, not the limit's.
    """
    total = 0.0
    for path, url in zip(site.page_files, site.pages):
        html = path.read_text(encoding="utf-8")
        start = time.thread_time()
        trafilatura.extract(html, url=url, **TRAFILATURA_OPTIONS)
        total += time.thread_time() - start
    return total


def peer(site: Site, urls: Path, workdir: Path, cores: int) -> tuple[Run, Run]:
    """wget into a WARC, then trafilatura's CLI over the article pages it saved.

    wget -x mirrors each URL to ``host:port/path``; the article pages are hard-linked into
    one folder, as a user would point trafilatura's ``--input-dir`` at them.
    """
    mirror = workdir / "peer"
    shutil.rmtree(mirror, ignore_errors=True)
    mirror.mkdir()
    wget = run(["wget", "--quiet", "-x", "-P", str(mirror / "site"), "-i", str(urls), "--warc-file",
                str(mirror / "peer")], workdir / "peer-wget.log", cwd=mirror)
    pages = mirror / "pages"
    pages.mkdir()
    for i, url in enumerate(site.pages):
        saved = mirror / "site" / url.split("://", 1)[1]
        if saved.is_file():
            os.link(saved, pages / f"{i:06d}.html")
    trafilatura_cli = shutil.which("trafilatura", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    extract = run([trafilatura_cli or "trafilatura", "--input-dir", str(pages), "-o", str(mirror / "md"), "--markdown",
                   "--images", "--parallel", str(cores)], workdir / "peer-trafilatura.log", cwd=mirror)
    return wget, extract


def fetched_urls(archive: Path) -> list[str]:
    """The target of every ``request`` record a crawl wrote, robots.txt aside, in order."""
    urls = []
    for path in sorted((archive / "warc").glob("*.warc.gz")):
        with path.open("rb") as f:
            for record in ArchiveIterator(f):
                uri = record.rec_headers.get_header("WARC-Target-URI")
                if record.rec_type == "request" and not uri.endswith("/robots.txt"):
                    urls.append(uri)
    return urls


def requests_made(stderr: str) -> int:
    """``downloader/request_count`` from the stats Scrapy dumps at the end of a crawl.

    ``postarc crawl`` writes its log to a file, one per process with ``--processes``, and names
    them on stderr (``log: A B``).
    """
    named = re.search(r"\blog: (.+)$", stderr, re.M)
    logs = [Path(p) for p in named.group(1).split()] if named else []
    texts = [p.read_text(errors="replace") for p in logs if p.is_file()] or [stderr]
    return sum(int(m.group(1)) for text in texts for m in re.finditer(r"'downloader/request_count': (\d+)", text))


def crawl_cmd(site: Site, archive: Path, settings: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(site.sources), "--archive", str(archive),
            *[a for s in settings for a in ("-s", s)]]


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "?")
    return (f"{cpu}, {len(os.sched_getaffinity(0))} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}, Scrapy {scrapy.__version__}")


def measure(posts: int, corpus: Path, workdir: Path, *, use_nginx: bool = True, settings: Sequence[str] = (),
            profile: Path | None = None, hosts: int = 1) -> tuple[dict[str, float | int], dict[str, object]]:
    """The figures (``KEYS``) and what else a reader of the table needs."""
    say = lambda msg: print(f"[bench] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    cores = len(os.sched_getaffinity(0))
    addresses = [f"127.0.0.{k}" for k in range(1, hosts + 1)]
    port = free_port_on(addresses)
    say(f"generating {posts} posts in {workdir}, on {hosts} host(s)")
    site = build_site(load_corpus(corpus), posts, workdir / "site", [f"http://{a}:{port}" for a in addresses])
    with StaticServer(site.root, port, use_nginx=use_nginx, hosts=addresses) as server:
        say(f"serving with {server.kind}; trafilatura over {len(site.pages)} pages")
        extract_s = extract_cpu(site)
        say("full crawl")
        archive = workdir / "archive"
        full = run(crawl_cmd(site, archive, settings), workdir / "full.log", sample=True)
        written = sum(1 for _ in (archive / "posts").rglob("*.md"))
        warc_bytes = sum(p.stat().st_size for p in (archive / "warc").glob("*"))
        say("fetch only, every URL the full crawl fetched")
        urls = workdir / "urls.txt"
        urls.write_text("\n".join(fetched_urls(archive)) + "\n", encoding="utf-8")
        fetch = run([sys.executable, "-m", "bench.fetch_spider", str(urls), *settings], workdir / "fetch.log", cwd=REPO)
        fetched = json.loads(fetch.stdout.strip().splitlines()[-1])
        say("peer: wget --warc-file over the same URLs, then the trafilatura CLI over its pages")
        peer_fetch, peer_extract = peer(site, urls, workdir, cores)
        say("incremental crawl (nothing changed)")
        incremental = run(crawl_cmd(site, archive, settings), workdir / "incremental.log")
        say("full crawl in one process (--processes 1)")
        single = run(crawl_cmd(site, workdir / "archive-1p", [*settings, "POSTARC_PROCESSES=1"]), workdir / "1p.log")
        say("full crawl in two processes (--processes 2)")
        two = run(crawl_cmd(site, workdir / "archive-2p", [*settings, "POSTARC_PROCESSES=2"]), workdir / "2p.log",
                  sample=True)
        say("full crawl without WARC capture")
        bare = run(crawl_cmd(site, workdir / "archive-nowarc", [*settings, "WARC_ENABLED=False"]),
                   workdir / "nowarc.log")
        if profile:
            say(f"profiled full crawl -> {profile}")
            fmt = "raw" if profile.suffix == ".txt" else "speedscope" if profile.suffix == ".json" else "flamegraph"
            py_spy = shutil.which("py-spy", path=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}") or "py-spy"
            run([py_spy, "record", "--subprocesses", "--threads", "--rate", str(PROFILE_RATE), "--format", fmt,
                 "-o", str(profile), "--", *crawl_cmd(site, workdir / "archive-profile", settings)],
                workdir / "profile.log")
    limit = max(fetch.wall_s, (fetch.cpu_s + extract_s) / cores)
    figures: dict[str, float | int] = {
        "fetch_s": round(fetch.wall_s, 2),
        "fetch_cpu_s": round(fetch.cpu_s, 2),
        "extract_cpu_s": round(extract_s, 2),
        "limit_s": round(limit, 2),
        "full_s": round(full.wall_s, 2),
        "efficiency": round(limit / full.wall_s, 3),
        "capture_overhead": round(full.wall_s / bare.wall_s, 3),
        "peak_rss_mb": round(full.peak_rss_mb, 1),
        "incremental_s": round(incremental.wall_s, 2),
        "posts": written,
        "posts_per_s": round(written / full.wall_s, 1),
        "peer_s": round(peer_s := peer_fetch.wall_s + peer_extract.wall_s, 2),
        "peer_ratio": round(full.wall_s / peer_s, 3),
        "cpu_ms_per_post": round(1000 * full.cpu_s / max(written, 1), 1),
        "cpu_ratio": round(full.cpu_s / (fetch.cpu_s + extract_s), 3),
        "single_process_s": round(single.wall_s, 2),
        "two_processes_s": round(two.wall_s, 2),
        "processes_gain": round(single.wall_s / two.wall_s, 3),
    }
    context: dict[str, object] = {
        "machine": machine(), "server": server.kind, "cores": cores,
        "site_urls": len(site.urls) + 1, "fetch_requests": fetched.get("downloader/request_count", 0),
        "fetch_statuses": {k.rsplit("/", 1)[1]: v for k, v in fetched.items() if k.startswith("bench/status/")},
        "crawl_requests": requests_made(full.log), "full_cpu_s": round(full.cpu_s, 1),
        "full_sys_cpu_s": round(full.sys_s, 1), "fetch_sys_cpu_s": round(fetch.sys_s, 1),
        "full_cpu_s_reactor_process": round(full.own_cpu_s, 1),
        "nowarc_s": round(bare.wall_s, 2), "nowarc_cpu_s": round(bare.cpu_s, 1),
        "single_process_cpu_s": round(single.cpu_s, 1), "two_processes_cpu_s": round(two.cpu_s, 1),
        "two_processes_peak_rss_mb": round(two.peak_rss_mb, 1),
        "incremental_requests": requests_made(incremental.log), "warc_mb": round(warc_bytes / 2**20, 1),
        "peer_fetch_s": round(peer_fetch.wall_s, 2), "peer_extract_s": round(peer_extract.wall_s, 2),
        "peer_cpu_s": round(peer_fetch.cpu_s + peer_extract.cpu_s, 1),
    }
    return figures, context


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=1000, help="posts in the generated aggregator (default 1000)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help=f"seed-format posts (default {DEFAULT_CORPUS})")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (site, archives, logs)")
    parser.add_argument("--hosts", type=int, default=4, choices=range(1, 255), metavar="K",
                        help="serve the sources from K loopback hosts, 127.0.0.1 to 127.0.0.K, as an aggregator's "
                             "sources are many sites (default 4)")
    parser.add_argument("--no-nginx", action="store_true", help="serve with the Python server even if nginx is there")
    parser.add_argument("-s", "--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a Scrapy setting for every crawl (fetch-only included)")
    parser.add_argument("--profile", type=Path, help="also run one full crawl under py-spy, into this file "
                        "(.svg flame graph, .json speedscope, .txt raw stacks: then also print where the CPU "
                        "goes, per thread and per stage, as bench.profile does)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line of the figures")
    args = parser.parse_args(argv)
    # A plain SIGTERM would skip the clean-up below (nginx, the temporary folder).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="postarc-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        figures, context = measure(args.posts, args.corpus, workdir.resolve(), use_nginx=not args.no_nginx,
                                   settings=args.set, profile=args.profile, hosts=args.hosts)
    for key, value in context.items():
        print(f"{key:<22} {value}")
    for key in KEYS:
        print(f"{key:<22} {figures[key]}")
    if args.profile and args.profile.suffix == ".txt":
        print(profile_report(summarise(args.profile, PROFILE_RATE)))
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
