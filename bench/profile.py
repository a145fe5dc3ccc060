"""Where a crawl's CPU goes, per thread and per stage, from py-spy's raw samples.

``python -m bench.profile PROFILE.txt [--rate 100] [--json]`` reads what
``py-spy record --subprocesses --threads --format raw`` wrote (``bench.throughput --profile
FILE.txt`` runs it so). py-spy samples only threads that are running (not idle), so samples
divided by the rate are CPU seconds, within sampling noise.

A sample belongs to the first stage in ``STAGES`` that any of its frames matches: the
pipeline stage that asked for the work wins over the library doing it (trafilatura's lxml
calls count as extraction, the media pipeline's Twisted callbacks as images). What no stage
claims is Scrapy and Twisted moving requests and responses: ``fetching``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

# (stage, pattern over a frame's "function (file:line)"), in the order a sample is claimed.
# py-spy names files relative to their sys.path entry ("trafilatura/core.py"): M() anchors a
# module path at the start of that name.
def M(*paths: str) -> str:
    return "|".join(rf"\((?:.*/)?{p}" for p in paths)


STAGES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(pattern)) for name, pattern in (
    ("start-up", r"\(<frozen importlib"),
    ("feed parsing", M(r"archive/feeds\.py", "feedparser/")),
    # Scrapy's media and files pipelines only (its item-pipeline manager runs every pipeline);
    # before markdown and extraction, whose helpers write and name the images (atomic_write).
    ("images", M(r"pipelines/images\.py", r"scrapy/pipelines/(?:media|files|images)\.py", "svg_hush")),
    ("markdown", M("archive/markdown", r"pipelines/markdown\.py", "markdownify/", "bs4/", "html_to_markdown/")),
    ("extraction", M(r"archive/(?:extract|html|pagemeta)\.py", r"pipelines/extract\.py", "trafilatura/", "justext/",
                     "htmldate/")),
    ("warc writing", M("archive/warc", "warcio/", r"archive/cdxj\.py", "cdxj_indexer/", "crawler/capture")
     + r"|WarcCapture"),
    ("catalogue", M(r"archive/catalogue\.py", r"pipelines/catalogue\.py", "sqlite3/")),
    # The other item pipelines (dates, dedup, stories, versions) and Scrapy's manager of them.
    ("item pipelines", M("pipelines/")),
    ("fetching", M("scrapy/", "twisted/", "asyncio/")),
))
# py-spy takes a thread blocked in C for a running one where the wait does not release its
# state the way py-spy checks (SimpleQueue.get, select): such a leaf is a wait, not CPU.
_WAIT = re.compile(r"^(_worker \(concurrent/futures/thread\.py|\S*select \(selectors\.py|Condition\.wait "
                   r"|\S*wait \(multiprocessing/connection\.py|Queue\.get |\S*\.poll |_recv_bytes |_recv )")
_PROCESS = re.compile(r"^process (\d+):")
_THREAD = re.compile(r"^thread \(\d+\)(?:: (.*))?$")


def role(frames: list[str]) -> str:
    """``reactor``, ``warc-writer``, ``other threads`` of a crawl process, or ``workers``.

    The innermost process frame names the sampled process: a ``multiprocessing`` child is a pool
    worker; any other is a crawl process (the parent or, with ``--processes N``, one of its
    children), whose threads are told apart by name.
    """
    process = next((f for f in reversed(frames) if _PROCESS.match(f)), "")
    if "multiprocessing" in process:
        return "workers"
    thread = next((m.group(1) or "" for f in frames if (m := _THREAD.match(f))), "")
    if thread.startswith("MainThread"):
        return "reactor"
    if thread.startswith("warc-writer"):
        return "warc-writer"
    return "other threads"


def stage(frames: list[str]) -> str:
    for name, pattern in STAGES:
        if any(pattern.search(f) for f in frames):
            return name
    return "other"


def summarise(raw: Path, rate: float) -> dict[str, dict[str, float]]:
    """CPU seconds by role and by stage, and by role × stage."""
    by_role: Counter[str] = Counter()
    by_stage: Counter[str] = Counter()
    cross: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if _WAIT.match(frames[-1]):
            continue
        who, what = role(frames), stage(frames)
        by_role[who] += int(count)
        by_stage[what] += int(count)
        cross[who][what] += int(count)
    seconds = lambda c: {k: round(v / rate, 2) for k, v in c.most_common()}  # noqa: E731
    return {"threads": seconds(by_role), "stages": seconds(by_stage),
            **{f"{who}: stages": seconds(c) for who, c in sorted(cross.items())}}


def report(summary: dict[str, dict[str, float]]) -> str:
    lines = []
    for title, table in summary.items():
        total = sum(table.values()) or 1
        lines.append(f"{title} (CPU s, share)")
        lines += [f"  {k:<16} {v:8.2f}  {100 * v / total:5.1f} %" for k, v in table.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("raw", type=Path, help="py-spy --format raw output (with --threads)")
    parser.add_argument("--rate", type=float, default=100, help="py-spy's --rate (default 100)")
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    args = parser.parse_args(argv)
    summary = summarise(args.raw, args.rate)
    print(report(summary))
    if args.json:
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
