"""One post per story across feeds (``dedup: across``), through the real ``postarc crawl``.

Three feeds on one local site carry the same stories under different URLs: one link with other
tracking parameters, two links whose pages name one canonical URL, a syndicated copy (other
boilerplate, truncated, other markup) under a URL of its own; and short posts with one text,
which must stay apart.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from html import escape
from pathlib import Path

import pytest
import yaml
from scrapy.settings import Settings
from scrapy.utils.test import get_crawler

from archive.stories import mark_keys, sketch

from crawler.demo.server import Resource, SiteServer
from crawler.items import Post
from pipelines.stories import StoryPipeline
from tests.conftest import needs_tool
from tests.helpers import hexo_installed, hexo_load, postarc, posts_of, write_sources
from tests.test_redis import redis_url  # noqa: F401 (the fixture: a redis-server of its own)

_SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "vo", "pe", "da", "xu", "zo", "fi", "gu", "ha", "je"]
SHORT = "Meeting moved to noon today."


def text(seed: int, words: int = 160) -> str:
    """Prose no other seed shares a phrase of."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choices(_SYLLABLES, k=3)) for _ in range(400)]
    return " ".join(rng.choices(vocabulary, k=words)) + "."


def paragraphs(seed: int) -> list[str]:
    return [text(seed * 10 + i, 60) for i in range(4)]


def page(body: str, canonical: str | None = None) -> Resource:
    link = f'<link rel="canonical" href="{canonical}">' if canonical else ""
    return Resource(f"<html><head><title>t</title>{link}</head><body><article>{body}</article></body></html>"
                    .encode(), "text/html; charset=utf-8")


def item(title: str, link: str, guid: str, body: str) -> str:
    return (f"<item><title>{title}</title><link>{escape(link)}</link><guid>{guid}</guid>"
            f"<pubDate>Fri, 29 Apr 2022 00:12:15 GMT</pubDate><description>{escape(body)}</description></item>")


def feed(title: str, items: list[str]) -> Resource:
    return Resource(f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{"".join(items)}'
                    "</channel></rss>".encode(), "application/rss+xml")


def serve(site: SiteServer) -> None:
    base = site.base
    one, two, three = ("".join(f"<p>{p}</p>" for p in paragraphs(n)) for n in (1, 2, 3))
    syndicated = ("<div class='note'>Republished from our partner; subscribe for more.</div>"
                  + "<br>".join(paragraphs(3)[:3]) + "<p>Read more…</p>")
    site.routes.update({
        "/robots.txt": Resource(b"User-agent: *\nAllow: /\n", "text/plain"),
        "/news/1": page(one),
        "/a/2.html": page(two, "/story/2"),
        "/b/two.html": page(f"<p>{text(22)}</p>", f"{base}/story/2?utm_campaign=b"),  # only the URL is shared
        "/a/3.html": page(three),
        "/b/syndicated-3.html": page(syndicated),
        "/a/short": page(f"<p>{SHORT}</p>"),
        "/b/short": page(f"<p>{SHORT}</p>"),
        "/b/5.html": page(f"<p>{text(5)}</p>"),
        "/a/feed.xml": feed("Alpha", [
            item("One", f"{base}/news/1?utm_source=alpha&utm_medium=rss", "a1", one),
            item("Two", f"{base}/a/2.html", "a2", "<p>Two, in short.</p>"),
            item("Three", f"{base}/a/3.html", "a3", three),
            item("Short", f"{base}/a/short", "a4", SHORT),
        ]),
        "/b/feed.xml": feed("Beta", [
            item("One again", f"{base}/news/1?fbclid=XYZ&utm_source=beta", "b1", f"<p>{text(11)}</p>"),
            item("Two again", f"{base}/b/two.html", "b2", "<p>Two, told briefly.</p>"),
            item("Three, syndicated", f"{base}/b/syndicated-3.html", "b3", syndicated),
            item("Short too", f"{base}/b/short", "b4", SHORT),
            item("Five", f"{base}/b/5.html", "b5", f"<p>{text(5)}</p>"),
        ]),
        "/c/feed.xml": feed("Gamma", [item("One, third time", f"{base}/news/1#top", "c1", one)]),
    })


def sources(site: SiteServer, tmp_path: Path, dedup: str | None = None, feeds: str = "abc") -> Path:
    defaults = f"defaults:\n  follow_links: true\n{f'  dedup: {dedup}' if dedup else ''}\n"
    names = {"a": ("alpha", "Alpha"), "b": ("beta", "Beta"), "c": ("gamma", "Gamma")}
    listed = "".join(f"  - name: {names[f][0]}\n    url: {site.url(f'/{f}/feed.xml')}\n"
                     f"    categories: [{names[f][1]}, news]\n" for f in feeds)
    return write_sources(tmp_path, f"{defaults}sources:\n{listed}")


def crawl(path: Path, archive: Path, *args: str) -> str:
    run = postarc("crawl", "--sources", str(path), "--archive", str(archive), *(args or ("--all",)))
    assert run.returncode == 0, run.stderr
    return run.stderr


def by_guid(archive: Path) -> dict[str, tuple[dict, str]]:
    return {fm["guid"].rsplit("/", 1)[-1]: (fm, body) for fm, body in posts_of(archive).values()}


def files(archive: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted((archive / "posts").rglob("*.md"))}


@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SiteServer, Path, Path]]:
    """Alpha alone, then every feed: the second run finds Alpha's stories archived (the tests
    that share it leave it as they found it)."""
    tmp_path = tmp_path_factory.mktemp("stories")
    with SiteServer() as site:
        serve(site)
        archive = tmp_path / "archive"
        crawl(sources(site, tmp_path), archive, "--only", "alpha")
        crawl(sources(site, tmp_path), archive)
        yield site, tmp_path, archive


def test_a_story_of_several_feeds_is_one_post(merged: tuple[SiteServer, Path, Path]):
    site, _tmp, archive = merged
    posts = by_guid(archive)
    # Beta's link with other tracking parameters, its page naming the same canonical URL, its
    # syndicated copy, and Gamma's link with a fragment: all the posts Alpha has.
    assert sorted(posts) == ["a1", "a2", "a3", "a4", "b4", "b5"]
    alpha, beta, gamma = (site.url(f"/{f}/feed.xml") for f in "abc")
    one = posts["a1"][0]
    assert one["source"] == alpha
    assert set(one["sources"][1:]) == {beta, gamma} and one["sources"][0] == alpha
    assert one["categories"][:3] == ["Alpha", "news", one["categories"][2]]
    assert set(one["categories"]) == {"Alpha", "news", "Beta", "Gamma"}
    with sqlite3.connect(archive / "state.sqlite") as db:  # what the replay's category filter reads
        catalogued = json.loads(db.execute("SELECT categories FROM posts WHERE guid = ?", (one["guid"],)).fetchone()[0])
    assert catalogued == one["categories"]
    for guid in ("a2", "a3"):
        assert posts[guid][0]["sources"] == [alpha, beta]
        assert posts[guid][0]["categories"] == ["Alpha", "news", "Beta"]
    # A few words are no fingerprint: one short text in two feeds is two posts, each of its feed.
    for guid in ("a4", "b4", "b5"):
        assert "sources" not in posts[guid][0]
    assert posts["a4"][1] == posts["b4"][1]


def test_a_recrawl_writes_nothing_and_the_archive_verifies(merged: tuple[SiteServer, Path, Path]):
    site, tmp_path, archive = merged
    before = files(archive)
    site.log.clear()
    crawl(sources(site, tmp_path), archive)
    assert files(archive) == before  # no second file, not one byte rewritten
    fetched = {path for path, _headers in site.log}
    assert not fetched & {"/b/two.html", "/b/syndicated-3.html", "/news/1"}  # merged entries skip their page
    run = postarc("verify", "--archive", str(archive))
    assert run.returncode == 0, run.stdout + run.stderr
    rebuilt = postarc("reextract", "--archive", str(archive))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert files(archive) == before  # the story's sources come back from the index


@needs_tool("Hexo's node modules in tests/hexo (tests/install-tools: npm ci --prefix tests/hexo)", hexo_installed())
def test_hexo_reads_the_story_with_every_feeds_categories(merged: tuple[SiteServer, Path, Path]):
    _site, tmp_path, archive = merged
    loaded = {Path(p["source"]).stem: p for p in hexo_load(archive / "posts", tmp_path / "hexo-site")}
    one = next(p for name, p in loaded.items() if name.startswith("one-"))
    assert set(one["categories"]) == {"Alpha", "news", "Beta", "Gamma"}
    assert len(one["sources"]) == 3


def test_an_archive_from_before_the_story_index_gets_its_posts_indexed_once(site: SiteServer, tmp_path: Path):
    """Alpha archived by a postarc without the story index (its tables dropped), then every feed:
    the index is made from the catalogue and the post files when first opened, and the copies
    of Alpha's stories join them, by link and by fingerprint. The page's canonical URL was not
    kept, so a story only it names (Beta's "Two again") is a post of its own."""
    serve(site)
    archive = tmp_path / "archive"
    crawl(sources(site, tmp_path), archive, "--only", "alpha")
    with sqlite3.connect(archive / "state.sqlite") as db:
        db.execute("DROP TABLE story_keys")
        db.execute("DROP TABLE story_members")
    before = files(archive)
    crawl(sources(site, tmp_path), archive)
    posts = by_guid(archive)
    assert sorted(posts) == ["a1", "a2", "a3", "a4", "b2", "b4", "b5"]
    alpha, beta, gamma = (site.url(f"/{f}/feed.xml") for f in "abc")
    assert posts["a1"][0]["sources"][0] == alpha and set(posts["a1"][0]["sources"][1:]) == {beta, gamma}
    assert posts["a3"][0]["sources"] == [alpha, beta]  # the syndicated copy, by its fingerprint
    assert set(posts["a1"][0]["categories"]) == {"Alpha", "news", "Beta", "Gamma"}
    assert "sources" not in posts["a2"][0] and "sources" not in posts["b2"][0]
    changed = {p for p, data in files(archive).items() if before.get(p) != data}
    assert {p.stem.split("-")[0] for p in changed if p in before} == {"one", "three"}  # only those rewritten
    crawl(sources(site, tmp_path), archive)  # and the index is made once: nothing changes after
    assert by_guid(archive).keys() == posts.keys()


def test_one_run_over_both_feeds_writes_each_story_once(site: SiteServer, tmp_path: Path):
    serve(site)
    archive = tmp_path / "archive"
    err = crawl(sources(site, tmp_path, feeds="ab"), archive, "--all", "-s", "POSTARC_PROGRESS=True")
    posts = by_guid(archive)
    assert len(posts) == 6  # three stories, two short posts, Beta's fifth
    stories = [fm for fm, _body in posts.values() if "sources" in fm]
    assert len(stories) == 3
    for fm in stories:
        assert sorted(fm["sources"]) == sorted(site.url(f"/{f}/feed.xml") for f in "ab")
        assert fm["source"] == fm["sources"][0]
    # The summary table says, per source, how many of its entries joined the other feed's post;
    # the progress line (drawn every 0.5 s, so maybe before the last merge), how many so far.
    lines = [line.split() for line in err.replace("\x1b[K", "").replace("\r", "\n").splitlines()]
    header = next(cols for cols in lines if cols[:1] == ["source"])
    merged = {cols[0]: int(cols[header.index("merged")]) for cols in lines if cols[:1] in (["alpha"], ["beta"])}
    feed = {site.url("/a/feed.xml"): "alpha", site.url("/b/feed.xml"): "beta"}
    other = {"alpha": "beta", "beta": "alpha"}
    assert merged == {name: sum(other[feed[fm["source"]]] == name for fm in stories) for name in ("alpha", "beta")}
    assert sum(merged.values()) == 3
    so_far = [int(cols[cols.index("merged") + 1]) for cols in lines if cols[:1] == ["feeds"]]
    assert so_far and so_far == sorted(so_far) and so_far[-1] <= 3


def test_within_keeps_one_post_per_feed_entry(site: SiteServer, tmp_path: Path):
    serve(site)
    archive = tmp_path / "archive"
    crawl(sources(site, tmp_path, dedup="within", feeds="ab"), archive)
    posts = by_guid(archive)
    assert sorted(posts) == ["a1", "a2", "a3", "a4", "b1", "b2", "b3", "b4", "b5"]
    assert not any("sources" in fm for fm, _body in posts.values())


def test_an_unknown_dedup_value_is_refused(tmp_path: Path):
    path = write_sources(tmp_path, "defaults:\n  dedup: everywhere\nsources:\n  - name: a\n    url: http://127.0.0.1:9/f\n")
    run = postarc("crawl", "--sources", str(path), "--archive", str(tmp_path / "a"))
    assert run.returncode == 2
    assert f"{path}:2: defaults.dedup: Input should be 'across' or 'within'" in run.stderr
    assert "Traceback" not in run.stderr
    assert yaml.safe_load(path.read_text())["defaults"]["dedup"] == "everywhere"


def test_the_story_index_is_shared_through_redis(tmp_path: Path, redis_url: str):
    """Both backends of the crawl state keep the index alike: keys claimed first-wins across
    workers, members in the order they came, seeded from state.sqlite and written through to it."""
    from archive.catalogue import Catalogue, StoryMember
    from archive.state_redis import RedisState

    record = Catalogue.of_archive(tmp_path)
    record.claim_story_keys(["url http://a/1"], "alpha", "a1")
    record.save_story_member(StoryMember("alpha", "a1", "alpha", "a1", "http://a/feed", ["A"], "h1", "3:", seq=1))
    a = RedisState.from_url(redis_url, "t", Catalogue.of_archive(tmp_path), owner="host:1")
    b = RedisState.from_url(redis_url, "t", Catalogue.of_archive(tmp_path), owner="host:2")
    try:
        assert a.seed()
        assert b.story_owners(["url http://a/1", "mark 00"]) == {"url http://a/1": ("alpha", "a1")}
        b.claim_story_keys(["url http://a/1", "mark 01"], "beta", "b1")  # the first claim stands
        assert a.story_owners(["url http://a/1", "mark 01"]) == {"url http://a/1": ("alpha", "a1"),
                                                                 "mark 01": ("beta", "b1")}
        assert record.story_owners(["mark 01"]) == {"mark 01": ("beta", "b1")}
        b.save_story_member(StoryMember("beta", "b1", "alpha", "a1", "http://b/feed", ["B"], "h2", None, seq=2))
        b.save_story_member(StoryMember("beta", "b1", "alpha", "a1", "http://b/feed", ["B"], "h3", None, seq=9))
        for state in (a, record):
            assert [m.feed_url for m in state.story_members("alpha", "a1")] == ["http://a/feed", "http://b/feed"]
            assert state.story_member("beta", "b1").content_hash == "h3" and state.story_member("beta", "b1").seq == 2
    finally:
        a.close()
        b.close()
        record.close()


def test_story_urls_lose_tracking_but_keep_meaning():
    from archive.stories import page_canonical, story_url

    assert story_url("HTTPS://Example.COM:443/a?utm_source=x&id=7&fbclid=1&spm=a.b&gclid=2#c") == \
        "https://example.com/a?id=7"
    assert story_url("http://example.com:8080/a?p=2&mc_cid=1&_hsenc=3&igshid=4&yclid=5") == "http://example.com:8080/a?p=2"
    assert story_url("mailto:x@example.com") is None and story_url("http://[x") is None
    head = '<html><head><link href="/post/9?utm_medium=rss" rel="alternate canonical"></head><body>'
    assert page_canonical(head, "https://example.com/x/y") == "https://example.com/post/9"
    # A template whose every page names the home page names no story; a canonical in the body is no canonical.
    assert page_canonical('<head><link rel="canonical" href="https://example.com/"></head>', "https://example.com/p") is None
    assert page_canonical('<head></head><body><link rel="canonical" href="/x/1">', "https://example.com/p") is None


def test_two_crawl_processes_meeting_one_story_write_it_once(tmp_path: Path):
    """--processes 2, a feed on each of two loopback hosts, linking the same articles: the
    process that claims a story's URL first writes it, the other waits for the post and joins it."""
    with SiteServer(host="127.0.0.1") as one, SiteServer(host="127.0.0.2") as two:
        serve(one)
        two.routes.update({"/robots.txt": one.routes["/robots.txt"], "/b/feed.xml": one.routes["/b/feed.xml"]})
        path = write_sources(tmp_path, "defaults:\n  follow_links: true\nsources:\n"
                             f"  - name: alpha\n    url: {one.url('/a/feed.xml')}\n    categories: [Alpha]\n"
                             f"  - name: beta\n    url: {two.url('/b/feed.xml')}\n    categories: [Beta]\n")
        archive = tmp_path / "archive"
        crawl(path, archive, "--all", "--processes", "2")
        posts = by_guid(archive)
    assert len(posts) == 6, sorted(posts)
    stories = [fm for fm, _body in posts.values() if "sources" in fm]
    assert len(stories) == 3
    for fm in stories:
        assert sorted(fm["sources"]) == [one.url("/a/feed.xml"), two.url("/b/feed.xml")]
        assert set(fm["categories"]) == {"Alpha", "Beta"}


def _story_pipeline(archive: Path, redis: str | None = None) -> StoryPipeline:
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("POSTARC_ARCHIVE_DIR", str(archive))
    if redis:
        settings.set("REDIS_URL", redis)
    ours = {k: v for k, v in settings.copy_to_dict().items() if k.startswith(("POSTARC_", "REDIS_", "EXTENSIONS"))}
    return StoryPipeline.from_crawler(get_crawler(settings_dict=ours))


def _entry(source: str, body: str) -> Post:
    return Post(source=source, feed_url=f"http://{source}.test/feed.xml", title="t", guid=f"{source}-1",
                link=f"http://{source}.test/1", author="", categories=[], feed_html=body,
                fetched_at=datetime.now(timezone.utc), sketch=sketch(body))


@pytest.mark.parametrize("shared", [False, True], ids=["sqlite", "redis"])
def test_a_story_met_by_fingerprint_in_two_processes_at_once_has_one_post(tmp_path: Path, shared: bool, request):
    """Two crawl processes find one story, under two URLs, at the same moment: the one that
    looks second waits for the first's claim and joins its story, where before both found
    nothing (the fingerprint marks were not yet claimed) and both wrote the post."""
    redis = request.getfixturevalue("redis_url") if shared else None
    body = " ".join(paragraphs(7))
    first, second = _story_pipeline(tmp_path, redis), _story_pipeline(tmp_path, redis)
    one, two = _entry("alpha", body), _entry("beta", body)
    found: list[tuple[str, str]] = []
    opened, go = threading.Event(), threading.Event()

    def look() -> None:  # the second process: its state opened (SQLite's is its thread's), then it looks
        assert second.state is not None
        opened.set()
        go.wait(10)
        found.append(second.claim(two))
        found.append(second.state.story_member("beta", "beta-1"))  # none: it claimed nothing for itself

    racer = threading.Thread(target=look)
    racer.start()
    assert opened.wait(10)
    with first.state.story_lock():  # the first process, between looking and claiming
        assert first.find(one) is None
        go.set()
        racer.join(0.5)
        assert racer.is_alive(), "the second process looked while the first held the story lock"
        first.save_member(one, ("alpha", "alpha-1"), None)
        first.state.claim_story_keys(mark_keys(one.sketch), "alpha", "alpha-1")
    racer.join(10)
    assert found == [("alpha", "alpha-1"), None]


def test_a_story_lock_held_past_its_time_is_let_go_quietly(tmp_path: Path, redis_url: str,  # noqa: F811
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that holds the Redis story lock past STORY_LOCK_S (Redis stalled) loses it to
    the expiry: leaving the lock then must not fail the post."""
    import archive.state_redis

    monkeypatch.setattr(archive.state_redis, "STORY_LOCK_S", 0.05)
    pipeline = _story_pipeline(tmp_path, redis_url)
    with pipeline.state.story_lock():
        time.sleep(0.2)
    with pipeline.state.story_lock():  # free again
        pass
