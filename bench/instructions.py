"""Instructions a workload executes, counted by valgrind: ``python -m bench.instructions WORKLOAD``.

This machine's CPU time drifts by ±15 % between runs (a shared VM), so a change worth 2 % cannot
be timed; the instructions a workload executes are the same to 0.1 % from run to run. Each
figure is user-space instructions (valgrind's cachegrind, ``Ir``), so a syscall saved is not in
it and a cache miss costs what a hit does: it tells which code does less work, not the seconds.

Workloads, over the posts of bench.synthetic's site (60–120 KB article pages, as
bench.throughput crawls them), in millions of instructions per post (page, for ``parse``):

- ``parse``: ``archive.html.parse_sized`` of each article page;
- ``choose``: ``archive.extract.choose_body`` of the feed's body and the page, what a worker
  runs first for a post;
- ``render``: ``archive.markdown.render_body`` of the chosen bodies;
- ``crawl``: the crawl process of ``postarc crawl`` into a fresh archive, the pool's workers
  left out (they are counted by the three above), start-up included: run it with the same
  ``--posts`` to compare.

The first three run the workload once and three times in two interpreters and report half the
difference, so imports and start-up cancel out. ``--tree DIR`` measures another checkout of
postarc (its ``archive`` package first on the path) with this one's harness.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.corpus import load_corpus
from bench.nginx import StaticServer, free_port_on
from bench.synthetic import build_site
from bench.throughput import DEFAULT_CORPUS
from bench.worker import site_posts

REPO = Path(__file__).resolve().parents[1]
WORKLOADS = ("parse", "choose", "render", "crawl")
_IR = re.compile(r"I\s+refs:\s+([\d,]+)")


def _valgrind(command: list[str], cwd: Path) -> int:
    """Instructions ``command`` executes under cachegrind (the process only, not its children)."""
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.instructions: valgrind is not installed (apt-get install valgrind)")
    # One hash seed: with a random one, set and dict layouts make counts vary by ±2 %.
    run = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
                          *command], cwd=cwd, capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONHASHSEED": "0"})
    found = _IR.search(run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"bench.instructions: {' '.join(command[:4])}… failed (exit {run.returncode}):\n"
                         + run.stderr[-2000:])
    return int(found[1].replace(",", ""))


# Run under valgrind: the tree's own archive package, the site's posts from a pickle made outside.
_INNER = """
import pickle, sys
tree, workload, passes, posts = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, tree)
from archive.extract import choose_body
from archive.html import parse_sized
from archive.markdown import render_body
found = pickle.load(open(posts, "rb"))
if workload == "render":
    bodies = [choose_body(feed, link, page, link).html for feed, link, page in found]
    work = [lambda body=body: render_body(body, "markdown", {}) for body in bodies]
elif workload == "parse":
    work = [lambda page=page: parse_sized(page) for _feed, _link, page in found]
else:
    work = [lambda post=post: choose_body(post[0], post[1], post[2], post[1]) for post in found]
for _ in range(passes):
    for one in work:
        one()
"""


def per_post(workload: str, posts: int, tree: Path) -> float:
    """Millions of instructions per post (per page for ``parse``)."""
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        if workload == "crawl":
            return _crawl(posts, tree, Path(tmp)) / posts / 1e6
        found = Path(tmp) / "posts.pickle"
        found.write_bytes(pickle.dumps(site_posts(load_corpus(DEFAULT_CORPUS), posts, Path(tmp) / "site")))
        once, thrice = (_valgrind([sys.executable, "-c", _INNER, str(tree), workload, str(passes), str(found)], cwd=tree)
                        for passes in (1, 3))
        return (thrice - once) / 2 / posts / 1e6


def _crawl(posts: int, tree: Path, tmp: Path) -> int:
    hosts = [f"127.0.0.{k}" for k in range(1, 5)]
    port = free_port_on(hosts)
    site = build_site(load_corpus(DEFAULT_CORPUS), posts, tmp / "site", [f"http://{h}:{port}" for h in hosts])
    with StaticServer(site.root, port, hosts=hosts):
        return _valgrind([sys.executable, "-m", "crawler.cli", "crawl", "--sources", str(site.sources),
                          "--archive", str(tmp / "archive")], cwd=tree)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--posts", type=int, default=30, help="posts of the site (default 30; crawl: use 100)")
    parser.add_argument("--tree", type=Path, default=REPO, help="the postarc checkout to measure (default: this one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figure = per_post(args.workload, args.posts, args.tree.resolve())
    result = {"workload": args.workload, "posts": args.posts, "tree": str(args.tree),
              "minstructions_per_post": round(figure, 3)}
    print(json.dumps(result) if args.json else
          f"{args.workload}: {figure:.3f} M instructions per {'page' if args.workload == 'parse' else 'post'}"
          f" ({args.posts} posts, {args.tree})")


if __name__ == "__main__":
    main()
