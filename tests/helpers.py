"""Test helpers: the real ``postarc`` command in a subprocess, and readers for its archive.

Each crawl runs in its own process, as users run it: Scrapy's reactor cannot be restarted in
one process, and a subprocess also proves the console script and settings work end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from archive.markdown import read_front_matter

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def postarc(*args: str, cwd: Path | None = None, timeout: float = 120, stdin: str | None = None) -> Run:
    """Run the ``postarc`` console script's code in a fresh Python process."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "crawler.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, input=stdin,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def posts_of(archive: Path) -> dict[str, tuple[dict, str]]:
    """Every post of an archive: posts/-relative path -> (front matter, body)."""
    result = {}
    for md in sorted((archive / "posts").rglob("*.md")):
        result[str(md.relative_to(archive / "posts"))] = read_front_matter(md.read_text(encoding="utf-8"))
    return result


def warc_records(archive: Path) -> list[tuple[str, object, bytes]]:
    """(file name, record headers, raw block payload) of every record, in file order."""
    out = []
    for path in sorted((archive / "warc").glob("*.warc.gz")):
        with path.open("rb") as f:
            for rec in ArchiveIterator(f):
                out.append((path.name, rec, rec.raw_stream.read()))
    return out


def write_sources(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text, encoding="utf-8")
    return path
