"""The throughput benchmark's harness runs end to end and reports its figures (not their values).

Skipped where the corpus folder is absent (set POSTARC_CORPUS), as in test_corpus.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.throughput import DEFAULT_CORPUS, KEYS, REPO

pytestmark = pytest.mark.skipif(not (DEFAULT_CORPUS / "posts").is_dir(), reason=f"no corpus at {DEFAULT_CORPUS}")


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
