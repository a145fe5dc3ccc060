"""``postarc reextract``: rebuild every post's Markdown and images from the WARC files alone.

Each recorded crawl run that wrote posts still in the catalogue is replayed, oldest first: its
spider runs again with its recorded arguments and settings, every request is answered from the
captures of that run (``crawler.replay.WarcDownloadHandler``; no socket is opened), and the
pipelines write the posts that run wrote (``pipelines.rebuild.RebuildPipeline`` in the dedup
pipeline's place). Nothing is appended to the WARC files and no crawl state (validators, run
records) changes. At the end it reports which Markdown files came out different.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapy.commands import ScrapyCommand
from scrapy.crawler import Crawler
from scrapy.settings import SETTINGS_PRIORITIES, Settings

from archive.catalogue import Catalogue, PostRow
from archive.replay.index import ensure_index
from archive.runs import Run, recorded_runs
from crawler.exitcodes import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from crawler.options import ArchiveOptionsMixin, add_archive_option, add_output_options

REPLAY_HANDLER = "crawler.replay.WarcDownloadHandler"
#: Extensions that record crawl state: a rebuild is not a crawl and must leave that state alone.
STATE_EXTENSIONS = ("crawler.runs.RunRecorder", "crawler.incremental.SourceState")


@dataclass
class Job:
    """One replayed run: a spider, its arguments, its settings, the captures' time window."""

    spider: str
    arguments: dict[str, Any]
    sources: str | None
    settings: dict[str, Any]
    since: str
    until: str
    label: str
    posts: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # the run's WARC files (empty: not recorded)


def run_of(post: PostRow, runs: list[Run], by_file: dict[str, Run]) -> Run | None:
    """The run that last wrote ``post``: the one that wrote the WARC file of its capture, else
    (runs recorded without their files) the latest to start of those whose time span holds the
    post's write time; a run that never recorded its end lasts until the next one starts."""
    if post.warc_filename in by_file:
        return by_file[post.warc_filename]
    written = post.updated or post.archived
    found = None
    for i, run in enumerate(runs):
        end = run.finished or (runs[i + 1].started if i + 1 < len(runs) else "9999")
        if not run.warc_files and run.started <= written <= end:
            found = run
    return found


def plan(posts: list[PostRow], runs: list[Run], sources_override: str | None) -> tuple[list[Job], dict[str, str]]:
    """The runs to replay, oldest first, and the posts no run can rebuild (path: reason)."""
    if not runs:
        if sources_override is None:
            return [], {p.path: "no crawl run recorded (archive made before runs were recorded): "
                                "give --sources FILE" for p in posts}
        job = Job("feeds", {}, sources_override, {}, "", "9999", "whole archive (--sources)",
                  [p.path for p in posts])
        return [job], {}
    by_file = {name: run for run in runs for name in run.warc_files}
    jobs: dict[int, Job] = {}
    by_run: dict[int, set[str]] = defaultdict(set)
    orphans: dict[str, str] = {}
    for post in posts:
        run = run_of(post, runs, by_file)
        if run is None:
            orphans[post.path] = f"no recorded run wrote {post.warc_filename or 'its capture'}"
            continue
        if run.spider == "feeds" and not (sources_override or run.sources):
            orphans[post.path] = f"run {run.id} recorded no sources file"
            continue
        if run.id not in jobs:
            jobs[run.id] = Job(run.spider, dict(run.arguments), sources_override or run.sources, run.settings,
                               run.started, run.finished or "9999", f"run {run.id} ({run.spider}, {run.started})",
                               files=list(run.warc_files))
        jobs[run.id].posts.append(post.path)
        by_run[run.id].add(post.source)
    for run_id, job in jobs.items():
        if job.spider == "feeds":
            recorded = {n for n in str(job.arguments.get("only") or "").split(",") if n}
            names = by_run[run_id] & recorded if recorded else by_run[run_id]
            job.arguments["only"] = ",".join(sorted(names))
    return [jobs[k] for k in sorted(jobs, key=lambda k: (jobs[k].since, k))], orphans


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class Command(ArchiveOptionsMixin, ScrapyCommand):
    requires_project = True

    def syntax(self) -> str:
        return "[--archive DIR] [--sources FILE] [output options]"

    def short_desc(self) -> str:
        return "Rebuild every post's Markdown and images from the WARC files (no network)"

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        add_archive_option(parser)
        parser.add_argument("--sources", metavar="FILE",
                            help="use this sources file instead of the ones recorded with each run "
                                 "(needed for archives made before runs were recorded)")
        add_output_options(parser)

    def process_options(self, args: list[str], opts: argparse.Namespace) -> None:
        super().process_options(args, opts)
        # Warnings and errors only, unless -L says otherwise: the report is what matters here.
        if (self.settings.getpriority("LOG_LEVEL") or 0) < SETTINGS_PRIORITIES["cmdline"]:
            self.settings.set("LOG_LEVEL", "WARNING", priority="cmdline")

    # -- settings of one replayed run ---------------------------------------------------

    def job_settings(self, job: Job) -> Settings:
        assert self.settings is not None
        settings = self.settings.copy()
        for name, value in job.settings.items():
            settings.set(name, value, priority="spider")  # over the project's, under the command line's
        pipelines = dict(settings.getdict("ITEM_PIPELINES"))
        pipelines.update({"pipelines.dedup.DedupPipeline": None, "pipelines.rebuild.RebuildPipeline": 200})
        extensions = dict(settings.getdict("EXTENSIONS"))
        extensions.update(dict.fromkeys(STATE_EXTENSIONS))
        settings.setdict({
            "POSTARC_REPLAY_SINCE": job.since,
            "POSTARC_REPLAY_UNTIL": job.until,
            # Times have second resolution: two runs can share a second; their files cannot.
            "POSTARC_REPLAY_FILES": job.files,
            "POSTARC_REBUILD_POSTS": job.posts,
            # Every download comes from the archive: no handler that can reach a network.
            "DOWNLOAD_HANDLERS": {"http": REPLAY_HANDLER, "https": REPLAY_HANDLER,
                                  "ftp": None, "s3": None, "file": None},
            # The project's downloader and spider middlewares (WARC capture, conditional requests,
            # skipping unchanged posts, politeness) serve a crawl; Scrapy's own ones stay.
            "DOWNLOADER_MIDDLEWARES": {},
            "SPIDER_MIDDLEWARES": {},
            "ITEM_PIPELINES": pipelines,
            "EXTENSIONS": extensions,
            "WARC_ENABLED": False,
            "AUTOTHROTTLE_ENABLED": False,
            "DOWNLOAD_DELAY": 0,
        }, priority="cmdline")
        return settings

    # -- run ----------------------------------------------------------------------------

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        assert self.settings is not None and self.crawler_process is not None
        archive = Path(self.settings["POSTARC_ARCHIVE_DIR"])
        state = archive / "state.sqlite"
        if not state.is_file() or not (archive / "warc").is_dir():
            print(f"postarc reextract: {archive.resolve()} is not a postarc archive", file=sys.stderr)
            self.exitcode = EXIT_USAGE
            return
        override = None
        if opts.sources:
            try:
                override = Path(opts.sources).read_text(encoding="utf-8")
            except OSError as exc:
                print(f"postarc reextract: cannot read {opts.sources}: {exc}", file=sys.stderr)
                self.exitcode = EXIT_USAGE
                return
        catalogue = Catalogue(state)
        try:
            posts = list(catalogue.posts())
        finally:
            catalogue.close()
        ensure_index(archive)
        jobs, orphans = plan(posts, recorded_runs(state), override)
        posts_dir = archive / "posts"
        before = {p.path: digest(posts_dir / f"{p.path}.md") for p in posts}
        images_before = {p for p in posts_dir.rglob("*") if p.is_file() and p.suffix != ".md"}
        started = time.time_ns()
        failures = self.replay(jobs)
        report = self.report(posts, before, images_before, started, orphans, posts_dir)
        self.exitcode = EXIT_ERROR if failures else (EXIT_PARTIAL if report else EXIT_OK)

    def replay(self, jobs: list[Job]) -> list[str]:
        """Run the jobs one after another in this process's reactor; returns what failed."""
        from twisted.internet import reactor

        process = self.crawler_process
        assert process is not None
        failures: list[str] = []

        async def run_all() -> None:
            try:
                with tempfile.TemporaryDirectory(prefix="postarc-reextract-") as tmp:
                    for n, job in enumerate(jobs):
                        print(f"postarc reextract: {job.label}: {len(job.posts)} post(s)", file=sys.stderr)
                        kwargs = dict(job.arguments)
                        if job.spider == "feeds":
                            sources = Path(tmp) / f"sources-{n}.yaml"
                            sources.write_text(job.sources or "", encoding="utf-8")
                            kwargs["sources"] = str(sources)
                        try:
                            spidercls = process.spider_loader.load(job.spider)
                            await process.crawl(Crawler(spidercls, self.job_settings(job)), **kwargs)
                        except Exception as exc:  # a bad recorded sources file, a spider gone
                            failures.append(f"{job.label}: {type(exc).__name__}: {exc}")
            finally:
                reactor.callLater(0, reactor.stop)

        asyncio.get_event_loop().create_task(run_all())
        process.start(stop_after_crawl=False)
        for failure in failures:
            print(f"postarc reextract: {failure}", file=sys.stderr)
        return failures

    @staticmethod
    def report(posts: list[PostRow], before: dict[str, str | None], images_before: set[Path], started: int,
               orphans: dict[str, str], posts_dir: Path) -> dict[str, str]:
        """Print what changed; returns the posts that were not rebuilt (path: reason)."""
        same, changed, missing = [], [], dict(orphans)
        for post in posts:
            md = posts_dir / f"{post.path}.md"
            try:
                rebuilt = md.stat().st_mtime_ns >= started
            except OSError:
                rebuilt = False
            if not rebuilt:
                missing.setdefault(post.path, "its run did not yield it again")
            elif digest(md) == before.get(post.path):
                same.append(post.path)
            else:
                changed.append(post.path)
        new_images = [p for p in posts_dir.rglob("*") if p.is_file() and p.suffix != ".md" and p not in images_before]
        for path in changed:
            print(f"changed: posts/{path}.md")
        for path, reason in sorted(missing.items()):
            print(f"not rebuilt: posts/{path}.md ({reason})")
        for image in sorted(new_images):
            print(f"new file: {image.relative_to(posts_dir.parent)}")
        print(f"postarc reextract: {len(same) + len(changed)} of {len(posts)} posts rebuilt from the WARC files: "
              f"{len(same)} identical, {len(changed)} changed, {len(missing)} not rebuilt, "
              f"{len(new_images)} new image file(s)", file=sys.stderr)
        return missing
