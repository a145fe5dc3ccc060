"""The sources file: every mistake named by file and line, defaults, and when a source is due."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from crawler.runner import due_sources
from crawler.exitcodes import EXIT_USAGE
from crawler.sources import Source, SourcesError, load_sources, parse_every, refuse_sources
from tests.helpers import postarc, write_sources

UTC = timezone.utc


def refused(tmp_path: Path, text: str) -> str:
    path = write_sources(tmp_path, text)
    with pytest.raises(SourcesError) as info:
        load_sources(path)
    return str(info.value).replace(str(path), "F")


def test_a_good_file_with_defaults(tmp_path: Path):
    config = load_sources(write_sources(tmp_path, """\
rsshub: https://rsshub.example.org/
defaults:
  follow_links: true
  timezone: Asia/Shanghai
  every: 30m
sources:
  - name: hot
    url: rsshub://qutoutiao/category/1
    categories: [新媒体, 趣头条]
  - name: blog
    url: https://example.org/feed.xml
    follow_links: false
    schedule: "*/5 * * * *"
    limit: 10
  - name: paused
    url: https://example.org/off.xml
    enabled: false
"""))
    hot, blog, paused = config.sources
    assert config.feed_url(hot) == "https://rsshub.example.org/qutoutiao/category/1"
    assert (hot.follow_links, hot.timezone, hot.every, hot.interval_s) == (True, "Asia/Shanghai", "30m", 1800)
    # A source's own timing replaces the default's (schedule and every exclude each other).
    assert (blog.follow_links, blog.schedule, blog.every, blog.limit) == (False, "*/5 * * * *", None, 10)
    assert paused.enabled is False


@pytest.mark.parametrize("text, expected", [
    ("sources:\n  - name: a\n    url: [unclosed\n", "F:4: invalid YAML"),
    ("sources:\n  - name: a\n    url: ftp://x\n", "F:3: sources.0.url: url must be http(s)://… or rsshub://route"),
    ("sources:\n  - name: a\n    url: http://x/f\n    schedule: '*/5 * * *'\n",
     "F:4: sources.0.schedule: schedule '*/5 * * *' is not a 5-field cron expression"),
    ("sources:\n  - name: a\n    url: http://x/f\n    every: 0s\n", "F:4: sources.0.every: every must look like"),
    ("sources:\n  - name: a\n    url: http://x/f\n    every: soon\n", "F:4: sources.0.every: every must look like"),
    ("sources:\n  - name: a\n    url: http://x/f\n    every: 5m\n    schedule: '* * * * *'\n",
     "F:2: sources.0: give either schedule or every, not both"),
    ("sources:\n  - name: a\n    url: http://x/f\n    timezone: Mars/Olympus\n",
     "F:4: sources.0.timezone: unknown time zone 'Mars/Olympus'"),
    ("sources:\n  - name: a\n    url: http://x/f\n    folow_links: true\n",
     "F:4: sources.0.folow_links: Extra inputs are not permitted"),
    ("sources:\n  - name: a\n    url: http://x/f\n    limit: 0\n", "F:4: sources.0.limit:"),
    ("sources:\n  - name: a\n    url: http://x/f\n    images: maybe\n", "F:4: sources.0.images:"),
    ("sources:\n  - name: a\n    url: http://x/f\n  - name: a\n    url: http://x/g\n",
     "F:4: sources.1.name: source name 'a' appears twice"),
    ("sources:\n  - name: a b\n    url: http://x/f\n", "F:2: sources.0.name:"),
    ("sources:\n  - name: a\n    url: http://x/f\n    url: http://x/g\n", "F:4: duplicate key 'url'"),
    ("rsshub: rsshub.app\nsources:\n  - name: a\n    url: http://x/f\n", "F:1: rsshub: rsshub must be an http(s)"),
    ("sources: []\n", "F:1: sources: List should have at least 1 item"),
    ("- just a list\n", "F:1: expected a mapping with a 'sources:' list"),
    ("", "F:1: expected a mapping"),
    ("sourcs:\n  - name: a\n", "F:1: sourcs: Extra inputs are not permitted"),
    # YAML 1.1 reads a bare off/yes/no as a boolean: named, not silently renamed.
    ("sources:\n  - name: off\n    url: http://x/f\n", "F:2: sources.0.name: Input should be a valid string"),
])
def test_every_mistake_names_file_and_line(tmp_path: Path, text: str, expected: str):
    assert expected in refused(tmp_path, text)


def test_a_bad_default_is_reported_once_at_its_own_line(tmp_path: Path):
    message = refused(tmp_path, """\
defaults:
  every: 10m
  folow_links: true
sources:
  - name: a
    url: http://x/a
  - name: b
    url: http://x/b
    timezone: Nowhere/Else
""")
    assert message.splitlines() == [
        "F:3: defaults.folow_links: Extra inputs are not permitted",
        "F:9: sources.1.timezone: unknown time zone 'Nowhere/Else'",
    ]


def test_unreadable_file(tmp_path: Path):
    with pytest.raises(SourcesError, match="cannot read"):
        load_sources(tmp_path / "missing.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"sources:\n  - name: caf\xe9\n")
    with pytest.raises(SourcesError, match="cannot read"):
        load_sources(tmp_path / "latin1.yaml")


def test_parse_every():
    assert [parse_every(v) for v in ("30s", "10m", " 2h ", "1d")] == [30, 600, 7200, 86400]
    for bad in ("0m", "10", "m", "1w", "-5s", "1.5h"):
        with pytest.raises(ValueError):
            parse_every(bad)


def source(**timing: str) -> Source:
    return Source(name="s", url="http://example.org/feed", **timing)


def test_every_counts_from_the_last_start():
    last = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    s = source(every="10m")
    assert s.next_run(last) == last + timedelta(minutes=10)
    assert not s.is_due(last, last + timedelta(minutes=9, seconds=59))
    assert s.is_due(last, last + timedelta(minutes=10))
    assert s.is_due(None, last)  # never run: due at once


def test_schedule_fires_at_the_next_cron_tick_after_the_last_start():
    last = datetime(2026, 1, 1, 12, 7, 30, tzinfo=UTC)
    s = source(schedule="*/15 * * * *")  # minutes 0, 15, 30, 45 of every hour, in any zone
    assert s.next_run(last) == datetime(2026, 1, 1, 12, 15, tzinfo=UTC)
    assert not s.is_due(last, datetime(2026, 1, 1, 12, 14, 59, tzinfo=UTC))
    assert s.is_due(last, datetime(2026, 1, 1, 12, 15, tzinfo=UTC))


def test_a_source_without_timing_is_always_due_unless_a_default_applies():
    last = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    s = source()
    assert s.next_run(last) is None and s.is_due(last, last)
    assert s.next_run(last, default_every=3600) == last + timedelta(hours=1)


def test_due_sources_skips_disabled_and_not_yet_due(tmp_path: Path):
    config = load_sources(write_sources(tmp_path, """\
sources:
  - {name: hourly, url: "http://x/h", every: 1h}
  - {name: always, url: "http://x/a"}
  - {name: paused, url: "http://x/o", enabled: false}
  - {name: new, url: "http://x/n", every: 1d}
"""))
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    runs = {"hourly": now - timedelta(minutes=30), "always": now - timedelta(seconds=1), "new": None}
    assert [s.name for s in due_sources(config, runs, now)] == ["always", "new"]
    runs["hourly"] = now - timedelta(hours=1)
    assert [s.name for s in due_sources(config, runs, now)] == ["hourly", "always", "new"]


def test_refuse_sources_says_it_in_one_form(capsys: pytest.CaptureFixture[str]):
    assert refuse_sources(SourcesError("F:3: sources.0.url: Field required\nF:5: sources.1.name: bad")) == EXIT_USAGE
    assert capsys.readouterr() == ("", "postarc: bad sources file\nF:3: sources.0.url: Field required\n"
                                       "F:5: sources.1.name: bad\n")


def test_every_command_refuses_a_broken_file_before_any_request_in_the_same_words(tmp_path: Path):
    sources = write_sources(tmp_path, "defaults:\n  every: 5m\nsources:\n  - name: a\n"
                                      "    url: http://127.0.0.1:9/feed\n    schedule: 'every day'\n")
    before = sources.read_bytes()
    opml = tmp_path / "feeds.opml"
    opml.write_text('<opml version="2.0"><body><outline text="b" xmlUrl="http://127.0.0.1:9/b"/></body></opml>',
                    encoding="utf-8")
    words = ["postarc: bad sources file",
             f"{sources}:6: sources.0.schedule: schedule 'every day' is not a 5-field cron expression"]
    for command in (["crawl"], ["schedule"], ["sources", "list"], ["sources", "export"],
                    ["sources", "import", str(opml)]):
        run = postarc(*command, "--sources", str(sources), "--archive", str(tmp_path / "data"))
        assert (run.returncode, run.stdout, run.stderr.splitlines()) == (EXIT_USAGE, "", words), command
    assert not (tmp_path / "data").exists()  # not even a log file
    assert sources.read_bytes() == before
