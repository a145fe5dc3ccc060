"""``postarc verify``: do the WARC files, the index and the catalogue of an archive agree?

Checks, each problem one line of the report:

- every WARC file is closed (no ``*.open``), readable to the end by warcio, starts with a
  ``warcinfo`` record, and every block and payload digest is right (warcio's digest checker);
- every ``revisit`` cites an archived record with the same payload, every ``conversion`` an
  archived record;
- ``indexes/index.cdxj`` is sorted and holds exactly the lines cdxj-indexer makes of the files;
- every payload digest in the catalogue names a record that has that payload;
- every post in the catalogue has its Markdown file, its capture record and a ``conversion``
  record citing that capture, and every Markdown file under ``posts/`` is in the catalogue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator

from archive.catalogue import Catalogue
from archive.cdxj import INDEXED_NAME, index_lines, index_path, warc_paths
from archive.warc.compat import install_brotli
from archive.warc.writer import OPEN_SUFFIX


@dataclass(frozen=True)
class Record:
    filename: str
    type: str
    uri: str
    payload_digest: str
    refers_to: str


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    files: int = 0
    records: int = 0
    index_lines: int = 0
    posts: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        state = "OK" if self.ok else f"{len(self.problems)} problem(s)"
        return (f"{self.files} WARC files, {self.records} records, {self.index_lines} index lines, "
                f"{self.posts} posts: {state}")


def _read_records(path: Path, report: Report, records: dict[str, Record]) -> None:
    name = path.name
    install_brotli()  # warcio's checks read each record's content: br ones too
    try:
        with path.open("rb") as f:
            it = ArchiveIterator(f, check_digests=True)
            for n, record in enumerate(it):
                h = record.rec_headers
                while record.content_stream().read(1 << 20):
                    pass
                if n == 0 and record.rec_type != "warcinfo":
                    report.problems.append(f"{name}: first record is {record.rec_type}, not warcinfo")
                if record.digest_checker.passed is False:
                    for problem in record.digest_checker.problems:
                        report.problems.append(f"{name} @{it.get_record_offset()}: {problem}")
                records[h.get_header("WARC-Record-ID")] = Record(
                    name, record.rec_type, h.get_header("WARC-Target-URI") or "",
                    h.get_header("WARC-Payload-Digest") or "", h.get_header("WARC-Refers-To") or "")
                report.records += 1
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes warcio raise is a finding
        report.problems.append(f"{name}: unreadable: {type(exc).__name__}: {str(exc)[:200]}")


def _check_citations(records: dict[str, Record], report: Report) -> None:
    for record_id, rec in records.items():
        if rec.type not in ("revisit", "conversion"):
            continue
        cited = records.get(rec.refers_to)
        if cited is None:
            report.problems.append(f"{rec.filename}: {rec.type} {record_id} cites {rec.refers_to or 'nothing'}, "
                                   "which is not in the archive")
        elif rec.type == "revisit" and cited.payload_digest != rec.payload_digest:
            report.problems.append(f"{rec.filename}: revisit {record_id} has payload {rec.payload_digest}, "
                                   f"the record it cites has {cited.payload_digest}")


def _expected_lines(archive_dir: Path, report: Report) -> tuple[list[str], set[str]]:
    """cdxj-indexer's lines for every file it can read, and the names of those it cannot."""
    lines, unreadable = [], set()
    for path in warc_paths(archive_dir):
        try:
            lines += index_lines([path])
        except Exception as exc:  # noqa: BLE001 - any failure of the indexer on a file is a finding
            report.problems.append(f"{path.name}: cdxj-indexer fails: {type(exc).__name__}: {str(exc)[:200]}")
            unreadable.add(path.name)
    return lines, unreadable


def _check_index(archive_dir: Path, report: Report) -> None:
    index = index_path(archive_dir)
    if not index.exists():
        report.problems.append(f"{index} is missing")
        return
    actual = index.read_text(encoding="utf-8").splitlines(keepends=True)
    report.index_lines = len(actual)
    if actual != sorted(actual):
        report.problems.append(f"{index} is not sorted")
    expected, unreadable = _expected_lines(archive_dir, report)
    actual = [line for line in actual if not any(f'"filename": "{name}"' in line for name in unreadable)]
    for line in sorted(set(expected) - set(actual)):
        report.problems.append(f"index lacks: {line.rstrip()}")
    for line in sorted(set(actual) - set(expected)):
        report.problems.append(f"index line for no record: {line.rstrip()}")
    listed = index.with_name(INDEXED_NAME)
    names = set(listed.read_text(encoding="utf-8").split()) if listed.exists() else set()
    for path in warc_paths(archive_dir):
        if path.name not in names:
            report.problems.append(f"{listed.name} does not list {path.name}")


def _check_catalogue(archive_dir: Path, records: dict[str, Record], report: Report) -> None:
    catalogue = Catalogue.of_archive(archive_dir)
    try:
        for row in catalogue.payloads():
            rec = records.get(row["record_id"])
            if rec is None or rec.filename != row["filename"]:
                report.problems.append(f"catalogue: payload {row['digest']} names record {row['record_id']} "
                                       f"in {row['filename']}, which is not there")
            elif rec.payload_digest != row["digest"]:
                report.problems.append(f"catalogue: payload {row['digest']} names record {row['record_id']}, "
                                       f"whose payload is {rec.payload_digest}")
        converted = {rec.refers_to for rec in records.values() if rec.type == "conversion"}
        posts_dir = archive_dir / "posts"
        catalogued = set()
        for post in catalogue.posts():
            report.posts += 1
            md = posts_dir / f"{post.path}.md"
            catalogued.add(md)
            what = f"post {post.path!r}"
            if not md.is_file():
                report.problems.append(f"{what}: Markdown file {md} is missing")
            if not post.record_id:
                report.problems.append(f"{what}: no capture record in the catalogue")
                continue
            capture = records.get(post.record_id)
            if capture is None or capture.filename != post.warc_filename:
                report.problems.append(f"{what}: capture {post.record_id} is not in {post.warc_filename}")
            if post.record_id not in converted:
                report.problems.append(f"{what}: no conversion record cites its capture {post.record_id}")
        if posts_dir.is_dir():
            for md in sorted(posts_dir.rglob("*.md")):
                if md not in catalogued:
                    report.problems.append(f"{md}: Markdown file not in the catalogue")
    finally:
        catalogue.close()


def verify_archive(archive_dir: str | os.PathLike[str]) -> Report:
    """Check an archive; the report lists every problem found (none: all holds)."""
    archive_dir = Path(archive_dir)
    report = Report()
    if not archive_dir.is_dir():
        report.problems.append(f"{archive_dir}: no such archive directory")
        return report
    for leftover in sorted((archive_dir / "warc").glob(f"*{OPEN_SUFFIX}")):
        report.problems.append(f"{leftover.name}: still open (a crawl is running, or the next one repairs it)")
    records: dict[str, Record] = {}
    paths = warc_paths(archive_dir)
    report.files = len(paths)
    for path in paths:
        _read_records(path, report, records)
    _check_citations(records, report)
    if paths:
        _check_index(archive_dir, report)
    if (archive_dir / "state.sqlite").exists():
        _check_catalogue(archive_dir, records, report)
    return report
