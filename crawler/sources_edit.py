"""Adding sources to a sources file in place: comments, order and quoting kept (ruamel.yaml).

The new text is checked with ``load_sources`` and swapped in atomically (``os.replace``): the
file is either as it was or the new, valid one, never half written.
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import SingleQuotedScalarString

from crawler.opml import Outline, slug_name
from crawler.sources import SourcesError, load_sources


@dataclass
class ImportReport:
    added: list[tuple[str, str]] = field(default_factory=list)  # (name, url)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (url, why)


def _round_trip(text: str) -> YAML:
    """A ruamel YAML that writes the block sequences as the file already does."""
    yaml = YAML()  # round-trip mode: comments kept
    yaml.preserve_quotes = True
    yaml.width = 4096
    m = re.search(r"^sources:[^\n]*\n(?:\s*#[^\n]*\n|\s*\n)*( *)- ", text, re.M)
    offset = len(m.group(1)) if m else 2
    yaml.indent(mapping=2, sequence=offset + 2, offset=offset)
    return yaml


def _str(value: str) -> str:
    """``value``, quoted where PyYAML (YAML 1.1, which reads the file) would take it for no
    string: ruamel writes YAML 1.2, where ``off``, ``yes`` or ``1_000`` need no quotes."""
    try:
        plain = isinstance(pyyaml.safe_load(value), str)
    except pyyaml.YAMLError:
        plain = False
    return value if plain else SingleQuotedScalarString(value)


def _flow(items: list[str]) -> CommentedSeq:
    seq = CommentedSeq([_str(i) for i in items])
    seq.fa.set_flow_style()
    return seq


def import_outlines(path: Path, outlines: list[Outline]) -> ImportReport:
    """Add a source per outline whose URL the file lacks; rewrite ``path`` atomically.

    A missing file is created. A file that is not a valid sources file is refused
    (``SourcesError``) and left as it is.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    existing = load_sources(path) if text.strip() else None
    yaml = _round_trip(text)
    data = yaml.load(text) if text.strip() else CommentedMap()
    if data.get("sources") is None:
        data["sources"] = CommentedSeq()
    sources = data["sources"]
    taken = {s.name for s in existing.sources} if existing else set()
    known = {u for s in existing.sources for u in (s.url, existing.feed_url(s))} if existing else set()
    report = ImportReport()
    for outline in outlines:
        if not re.match(r"^https?://\S+$", outline.url):
            report.skipped.append((outline.url, "not an http(s) URL"))
            continue
        if outline.url in known:
            report.skipped.append((outline.url, "already listed"))
            continue
        name = slug_name(outline.title, outline.url, taken)
        entry = CommentedMap(name=_str(name), url=_str(outline.url))
        if outline.folders:
            entry["categories"] = _flow(outline.folders)
        if outline.site:
            entry["site"] = _str(outline.site)
        sources.append(entry)
        taken.add(name)
        known.add(outline.url)
        report.added.append((name, outline.url))
    if report.added:
        out = io.StringIO()
        yaml.dump(data, out)
        _replace(path, out.getvalue())
    return report


def _replace(path: Path, text: str) -> None:
    """Write ``text`` beside ``path``, check it is a valid sources file, then swap it in."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        load_sources(tmp)  # never swap in a file the crawl would refuse
        os.replace(tmp, path)
    except (OSError, SourcesError):
        Path(tmp).unlink(missing_ok=True)
        raise
