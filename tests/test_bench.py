"""The throughput benchmark's harness runs end to end and reports its figures (not their values).

Skipped where the corpus folder is absent (set POSTARC_CORPUS), as in test_corpus.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from bench.throughput import DEFAULT_CORPUS, KEYS, REPO
from tests.conftest import needs_tool

pytestmark = needs_tool(f"the shared corpus at {DEFAULT_CORPUS}", (DEFAULT_CORPUS / "posts").is_dir())


def test_throughput_harness_prints_every_figure(tmp_path):
    run = subprocess.run([sys.executable, "-m", "bench.throughput", "--posts", "20", "--keep", str(tmp_path), "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert list(figures) == list(KEYS)
    assert figures["posts"] == 20
    assert all(figures[k] > 0 for k in KEYS)
    assert figures["limit_s"] >= figures["fetch_s"]
    assert figures["efficiency"] == pytest.approx(figures["limit_s"] / figures["full_s"], abs=0.01)
    assert not list((tmp_path / "archive" / "warc").glob("*.open"))
    printed = dict(line.split(None, 1) for line in run.stdout.splitlines() if " " in line and line[:1].isalpha())
    assert 0 <= float(printed["full_sys_cpu_s"]) < float(printed["full_cpu_s"])


def test_floor_harness_adds_up_and_bounds_efficiency(tmp_path):
    """bench.floor measures every library it names, and with a throughput line its ceiling."""
    from bench.floor import KEYS as FLOOR_KEYS

    line = {"fetch_s": 1.0, "fetch_cpu_s": 1.0, "extract_cpu_s": 1.0, "limit_s": 1.0}
    (tmp_path / "throughput.json").write_text("noise\n" + json.dumps(line) + "\n")
    run = subprocess.run([sys.executable, "-m", "bench.floor", "--posts", "20", "--keep", str(tmp_path / "work"),
                          "--throughput", str(tmp_path / "throughput.json"), "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(FLOOR_KEYS) | {"floor_s", "max_efficiency"} == set(figures)
    parts = [v for k, v in figures.items() if k.endswith("_cpu_s") and k not in ("extract_cpu_s", "library_cpu_s")]
    assert all(v >= 0 for v in parts) and figures["library_cpu_s"] > 0
    assert figures["library_cpu_s"] == pytest.approx(sum(parts), abs=0.05)
    assert figures["max_efficiency"] == pytest.approx(1.0 / figures["floor_s"], abs=0.01) and figures["max_efficiency"] <= 1


def test_worker_steps_split_a_post_against_the_yardstick():
    """bench.worker --steps times every step it names, on the throughput site's posts."""
    from bench.worker import STEPS

    run = subprocess.run([sys.executable, "-m", "bench.worker", "--site", "4", "--repeat", "1", "--steps", "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert set(STEPS) | {"posts", "feed_ms", "page_ms", "site_ms", "rerun_share"} == set(figures)
    assert all(figures[k] > 0 for k in STEPS)
    assert 0 <= figures["rerun_share"] <= 1


def test_profile_splits_samples_by_thread_and_stage(tmp_path):
    """bench.profile: a stage claims a sample whenever one of its frames is in the stack; waits are not CPU."""
    from bench.profile import summarise

    crawl = 'process 10:"python -m crawler.cli crawl"'
    worker = 'process 11:"python -c from multiprocessing.spawn import spawn_main'
    child = 'process 14:"python -m crawler.cli crawl --only a -s POSTARC_LOCK_HOLDER=10"'  # --processes N
    raw = tmp_path / "profile.txt"
    raw.write_text("\n".join([
        f"{crawl};thread (10): MainThread;run (twisted/internet/base.py:1);parse_feed (archive/feeds.py:9) 30",
        f"{crawl};thread (10): MainThread;run (twisted/internet/base.py:1);dataReceived (scrapy/core/x.py:2) 20",
        f"{crawl};thread (12): warc-writer_0;_write (archive/warc.py:3);compress (warcio/x.py:4) 10",
        f"{crawl};{worker}; spawn_main(tracker_fd=3) --multiprocessing-fork\";extract (trafilatura/core.py:5) 40",
        f"{crawl};thread (13): asyncio_0;_worker (concurrent/futures/thread.py:81) 500",
        f"{crawl};{child};thread (14): MainThread;dataReceived (scrapy/core/x.py:2) 10",
        f"{crawl};{child};{worker};extract (trafilatura/core.py:5) 10",
        f"{crawl};thread (10): MainThread;process_item_async (scrapy/pipelines/__init__.py:78);"
        f"save_post (archive/catalogue.py:281) 20",
        f"{crawl};thread (10): MainThread;process_item_async (scrapy/pipelines/__init__.py:78);"
        f"process_item (pipelines/dedup.py:60) 10",
        f"{crawl};thread (10): MainThread;process_item_async (scrapy/pipelines/__init__.py:78);"
        f"_process_request (scrapy/pipelines/media.py:171) 10",
        f"{crawl};thread (15): ThreadPoolExecutor-0_0;_write_inside (pipelines/images.py:76);"
        f"atomic_write (archive/markdown.py:95) 10",
    ]) + "\n")
    summary = summarise(raw, rate=10)
    assert summary["threads"] == {"workers": 5.0, "reactor": 10.0, "warc-writer": 1.0, "other threads": 1.0}
    assert summary["stages"] == {"extraction": 5.0, "feed parsing": 3.0, "fetching": 3.0, "warc writing": 1.0,
                                 "catalogue": 2.0, "item pipelines": 1.0, "images": 2.0}
    assert summary["reactor: stages"] == {"feed parsing": 3.0, "fetching": 3.0, "catalogue": 2.0,
                                          "item pipelines": 1.0, "images": 1.0}


def test_instructions_harness_counts_a_workload_in_another_tree(tmp_path):
    """bench.instructions counts with valgrind, and measures the checkout ``--tree`` names: a
    copy of this one whose parse does more work counts more."""
    from tests.tools import require_tool

    require_tool("valgrind")
    slower = tmp_path / "tree"
    shutil.copytree(REPO / "archive", slower / "archive")
    html = slower / "archive" / "html.py"
    html.write_text(html.read_text() + "\n_parse = parse_sized\n"
                    "def parse_sized(html):\n    [_parse(html) for _ in range(2)]\n    return _parse(html)\n")

    def count(*args: str) -> float:
        run = subprocess.run([sys.executable, "-m", "bench.instructions", "parse", "--posts", "2", "--json", *args],
                             capture_output=True, text=True, cwd=REPO, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        return json.loads(run.stdout)["minstructions_per_post"]

    here, there = count(), count("--tree", str(slower))
    assert here > 1 and there == pytest.approx(3 * here, rel=0.05)
