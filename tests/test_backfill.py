"""A feed's history (RFC 5005): archived feeds (``prev-archive``), paged feeds (``next``) and
complete feeds (``fh:complete``), read by ``backfill: true`` once and resumed after a failure."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from crawler.demo.server import Resource, SiteServer
from tests.helpers import postarc, posts_of, write_sources

FH = "http://purl.org/syndication/history/1.0"


def atom(title: str, ids: list[int], links: dict[str, str], complete: bool = False) -> Resource:
    link = "".join(f'<link rel="{rel}" href="{href}"/>' for rel, href in links.items())
    entries = "".join(f"<entry><id>urn:e:{title}:{i}</id><title>{title} {i}</title>"
                      f"<updated>2024-03-{i:02d}T08:00:00Z</updated><content type='html'>&lt;p&gt;Entry {i} of "
                      f"{title}.&lt;/p&gt;</content></entry>" for i in ids)
    return Resource(f'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xmlns:fh="{FH}">'
                    f'<title>{title}</title><id>urn:{title}</id><updated>2024-03-09T08:00:00Z</updated>'
                    f'{"<fh:complete/>" if complete else ""}{link}{entries}</feed>'.encode(), "application/atom+xml")


def crawl_files(archive: Path) -> dict[str, tuple[int, bytes]]:
    return {p: (f.stat().st_mtime_ns, f.read_bytes()) for p in posts_of(archive) for f in [archive / "posts" / p]}


def test_history_is_read_once_resumed_after_a_failure_and_then_only_the_head(site: SiteServer, tmp_path: Path):
    b = site.base
    site.routes.update({
        # Archived feed: head -> a2 -> a1 -> a2 again (a loop); a1 fails the first time.
        "/arch.xml": atom("arch", [6, 5], {"prev-archive": f"{b}/a2.xml"}),
        "/a2.xml": atom("arch", [4, 3], {"prev-archive": f"{b}/a1.xml", "current": f"{b}/arch.xml"}),
        "/a1.xml": [Resource(b"gone for now", "text/plain", status=404),
                    atom("arch", [2, 1], {"prev-archive": f"{b}/a2.xml"})],
        # Paged feed: only one page past the head (backfill_pages: 1).
        "/paged.xml": atom("paged", [3], {"next": f"{b}/paged2.xml"}),
        "/paged2.xml": atom("paged", [2], {"next": f"{b}/paged3.xml"}),
        "/paged3.xml": atom("paged", [1], {}),
        # Complete feed: every entry, past limit:, and no archive followed.
        "/complete.xml": atom("complete", [3, 2, 1], {"prev-archive": f"{b}/never.xml"}, complete=True),
    })
    sources = write_sources(tmp_path, f"""\
defaults:
  backfill: true
sources:
  - {{name: arch, url: "{b}/arch.xml"}}
  - {{name: paged, url: "{b}/paged.xml", backfill_pages: 1}}
  - {{name: complete, url: "{b}/complete.xml", limit: 1}}
""")
    archive = tmp_path / "data"

    def crawl() -> dict[str, tuple[int, bytes]]:
        run = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
        assert run.returncode == 0, run.stderr[-3000:]
        return crawl_files(archive)

    first = crawl()
    titles = Counter(fm["title"] for fm, _b in posts_of(archive).values())
    assert set(titles) == {"arch 6", "arch 5", "arch 4", "arch 3", "paged 3", "paged 2",
                           "complete 3", "complete 2", "complete 1"}
    second = crawl()  # resumes at a1.xml, stops at the loop back to a2.xml
    titles = Counter(fm["title"] for fm, _b in posts_of(archive).values())
    assert titles["arch 2"] == titles["arch 1"] == 1 and max(titles.values()) == 1
    assert {p: v for p, v in second.items() if p in first} == first  # nothing written twice
    third = crawl()
    assert third == second

    fetched = Counter(path for path, _h in site.log)
    rebuilt = postarc("reextract", "--archive", str(archive))  # each run's history documents, from the WARC
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr[-3000:]
    assert {p: v[1] for p, v in crawl_files(archive).items()} == {p: v[1] for p, v in third.items()}
    assert fetched["/arch.xml"] == fetched["/paged.xml"] == fetched["/complete.xml"] == 3
    assert fetched["/a2.xml"] == 1  # an archive page is immutable: fetched once, loop or not
    assert fetched["/a1.xml"] == 2  # failed, then resumed
    assert fetched["/paged2.xml"] == 1 and fetched["/paged3.xml"] == 0 and fetched["/never.xml"] == 0
