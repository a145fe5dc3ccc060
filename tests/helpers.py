"""Test helpers: the real ``postarc`` command in a subprocess, and readers for its archive.

Each crawl runs in its own process, as users run it: Scrapy's reactor cannot be restarted in
one process, and a subprocess also proves the console script and settings work end to end.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.checker import Checker

from archive.frontmatter import read_front_matter
from archive.warc.compat import install_brotli

REPO = Path(__file__).resolve().parents[1]
HEXO = REPO / "tests" / "hexo"  # Hexo itself, installed by `npm ci --prefix tests/hexo`


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


def warcio_check(archive: Path) -> None:
    """Assert that every WARC file of the archive passes ``warcio check`` (digests included)."""
    files = [str(p) for p in sorted((archive / "warc").glob("*.warc.gz"))]
    assert files, "no WARC file written"
    install_brotli()  # the checker decodes content: br with Google's Brotli, as the replay does
    checker = Checker(type("Args", (), {"inputs": files, "verbose": False})())
    assert checker.process_all() == 0, "warcio check failed"


def hexo_installed() -> bool:
    return (HEXO / "node_modules" / "hexo").is_dir() and shutil.which("node") is not None


def hexo_load(posts_dir: Path, site_dir: Path) -> list[dict]:
    """Copy ``posts_dir`` into a Hexo site's ``source/_posts`` and load it with Hexo's own loader."""
    (site_dir / "source").mkdir(parents=True)
    shutil.copytree(posts_dir, site_dir / "source" / "_posts")
    (site_dir / "node_modules").symlink_to(HEXO / "node_modules")
    shutil.copy(HEXO / "package.json", site_dir / "package.json")
    (site_dir / "_config.yml").write_text("title: postarc\npost_asset_folder: true\ntimezone: UTC\n")
    out = subprocess.run(["node", str(HEXO / "load_posts.js"), str(site_dir)], capture_output=True,
                         text=True, timeout=120, cwd=site_dir)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)
