"""``postarc history URL-or-path [--from N] [--to N]``: a post's versions and what changed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scrapy.commands import ScrapyCommand
from scrapy.exceptions import UsageError

from archive.catalogue import Catalogue, VersionRow
from archive.frontmatter import read_front_matter
from archive.versions import plain_diff, read_markdown, word_diff
from crawler.options import add_archive_option


def post_key(archive: Path, given: str) -> str:
    """A URL as given; a file or ``posts/``-relative path as the catalogue's path."""
    if "://" in given:
        return given
    file = Path(given)
    posts = (archive / "posts").resolve()
    if file.exists() and file.resolve().is_relative_to(posts):
        return file.resolve().relative_to(posts).as_posix()
    return given.removeprefix("posts/")


def body_of(archive: Path, version: VersionRow) -> str | None:
    if not version.markdown_filename or version.markdown_offset is None:
        return None
    try:
        return read_front_matter(read_markdown(archive, version.markdown_filename, version.markdown_offset))[1]
    except (OSError, StopIteration, UnicodeDecodeError):
        return None


class Command(ScrapyCommand):
    requires_project = True
    default_settings = {"LOG_ENABLED": False}

    def syntax(self) -> str:
        return "URL-or-path [--from N] [--to N] | URL-or-path --show N"

    def short_desc(self) -> str:
        return "List a post's versions and show the changes between two of them"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)
        parser.add_argument("--from", dest="old", type=int, metavar="N", help="version to diff from (default: the one before --to)")
        parser.add_argument("--to", dest="new", type=int, metavar="N", help="version to diff to (default: the latest)")
        parser.add_argument("--show", type=int, metavar="N", help="print version N's Markdown as it was archived")

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give one post: its article URL or its Markdown path")
        assert self.settings is not None
        archive = Path(opts.archive or self.settings["POSTARC_ARCHIVE_DIR"])
        if not (archive / "state.sqlite").exists():
            self._fail(f"{archive}: no archive here (no state.sqlite)")
            return
        catalogue = Catalogue.of_archive(archive)
        try:
            post = catalogue.post_by(post_key(archive, args[0]))
            versions = catalogue.versions(post.source, post.guid) if post else []
        finally:
            catalogue.close()
        if post is None:
            self._fail(f"{args[0]}: no such post in {archive}")
            return
        if not versions:  # archived by a postarc that kept no versions table: the file is the one
            print(f"{post.path}.md: 1 version (archived before versions were recorded)")
            print(f"  1  {post.updated or post.archived}  -  {post.record_id or '-'}  {post.title}")
            return
        if opts.show is not None:
            self._show(archive, versions, opts.show)
            return
        print(f"{post.path}.md: {len(versions)} version(s)")
        for n, v in enumerate(versions, 1):
            print(f"  {n}  {v.captured}  {v.content_hash[:19]}  {v.record_id or '-'}  {v.title}")
        if len(versions) < 2 and opts.old is None and opts.new is None:
            return
        new = opts.new or len(versions)
        old = opts.old or new - 1
        if not (1 <= old <= len(versions) and 1 <= new <= len(versions)):
            raise UsageError(f"versions are numbered 1 to {len(versions)}")
        self._diff(archive, versions, old, new)

    def _show(self, archive: Path, versions: list[VersionRow], n: int) -> None:
        if not 1 <= n <= len(versions):
            raise UsageError(f"versions are numbered 1 to {len(versions)}")
        version = versions[n - 1]
        if not version.markdown_filename or version.markdown_offset is None:
            self._fail(f"version {n}: its Markdown is not in the WARC files")
            return
        sys.stdout.write(read_markdown(archive, version.markdown_filename, version.markdown_offset))

    def _diff(self, archive: Path, versions: list[VersionRow], old: int, new: int) -> None:
        a, b = versions[old - 1], versions[new - 1]
        texts = body_of(archive, a), body_of(archive, b)
        print(f"\nchanges from version {old} ({a.captured}) to version {new} ({b.captured}):")
        if a.title != b.title:
            print("title: " + plain_diff(word_diff(a.title, b.title)))
        for n, text in zip((old, new), texts):
            if text is None:
                self._fail(f"version {n}: its Markdown is not in the WARC files")
                return
        print(plain_diff(word_diff(texts[0], texts[1])).rstrip("\n"))

    def _fail(self, message: str) -> None:
        print(f"postarc: {message}", file=sys.stderr)
        self.exitcode = 1
