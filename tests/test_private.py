"""Private feeds: credentials from ``${NAME}``, sent to the feed's own origin only, and not one
byte of any secret in the archive, the WACZ, the logs or what replay serves."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path
from urllib.parse import quote

import pytest

from archive.redact import basic_credentials
from crawler.demo.server import Resource, SiteServer
from tests.helpers import posts_of, postarc, warc_records, write_sources
from tests.replay_helpers import start_replay

# Distinct, greppable values; each must appear nowhere in what postarc writes.
SECRETS = {
    "FEED_TOKEN": "tok-7f3a9c-bearer-secret",
    "FEED_KEY": "key-51e0d2-header-secret",
    "FEED_QTOKEN": "qtok-b8c4e1-url-secret",
    "FEED_PASS": "pass-26d9f0-basic-secret",
    "FEED_COOKIE": "cook-93aa17-cookie-secret",
}
SERVER_SESSION = "srv-0c5e72-set-cookie-secret"  # a session the source sets: redacted too
CRED_HEADERS = ("Authorization", "X-Api-Key", "Cookie")


def rss(items: list[tuple[str, str, str]]) -> bytes:
    body = "".join(f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
                   f"<description><![CDATA[{html}]]></description></item>" for t, link, html in items)
    return f"<rss version='2.0'><channel><title>Private</title>{body}</channel></rss>".encode()


def paragraph(title: str, i: int) -> str:
    return (f"<p>Paragraph {i} of the private article {title}, which says something new each "
            f"time: {i * 7} reasons, {i * 3} examples and one conclusion.</p>")


def page(title: str, img: str) -> Resource:
    text = "".join(paragraph(title, i) for i in range(8))
    return Resource(f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>"
                    f"{text}<p><img src='{img}' alt='figure'></p><p>The end.</p></article></body></html>".encode())


@pytest.fixture
def cdn():
    with SiteServer() as other:  # another origin: a CDN and another site
        yield other


def serve(site: SiteServer, cdn: SiteServer) -> None:
    png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")
    session = [("Set-Cookie", f"session={SERVER_SESSION}; Path=/; HttpOnly")]
    site.routes.update({
        "/private/feed.xml": Resource(rss([
            ("Own page", f"{site.base}/private/a1.html", paragraph("Own page", 0)),
            ("Elsewhere", f"{cdn.base}/article.html", paragraph("Elsewhere", 0)),
            ("Moved", f"{site.base}/private/moved", paragraph("Moved", 0)),
        ]), "application/rss+xml", headers=session),
        "/private/a1.html": page("Own page", "/private/own.png"),
        "/private/own.png": Resource(png, "image/png"),
        "/private/moved": Resource(b"", status=302, headers=[("Location", f"{cdn.base}/landing.html")]),
        "/basic/feed.xml": Resource(rss([("Basic one", f"{site.base}/basic/b1", "<p>basic body text</p>")]),
                                    "application/rss+xml"),
        "/cookie/feed.xml": Resource(rss([("Cookie one", f"{site.base}/cookie/c1", "<p>cookie body</p>")]),
                                     "application/rss+xml", headers=session),
    })
    cdn.routes.update({
        "/article.html": page("Elsewhere", f"{cdn.base}/cdn.png"),
        "/landing.html": page("Moved", f"{cdn.base}/cdn.png"),
        "/cdn.png": Resource(png, "image/png"),
    })


def sources_text(base: str) -> str:
    return f"""\
sources:
  - name: bearer
    url: "{base}/private/feed.xml?token=${{FEED_QTOKEN}}&lang=en"
    secret_params: [token]
    follow_links: true
    auth: {{type: bearer, token: "${{FEED_TOKEN}}"}}
    headers: {{X-Api-Key: "${{FEED_KEY}}", Accept-Language: fr}}
  - name: basic
    url: {base}/basic/feed.xml
    auth: {{type: basic, username: me, password: "${{FEED_PASS}}"}}
  - name: cookie
    url: {base}/cookie/feed.xml
    auth: {{type: cookie, cookie: "session=${{FEED_COOKIE}}"}}
"""


def every_byte(path: Path) -> bytes:
    """A file's bytes, and its content once gunzipped or unzipped (WARC members, WACZ entries)."""
    data = path.read_bytes()
    return data + b"\n" + _unpacked(path.name, data)


def _unpacked(name: str, data: bytes) -> bytes:
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith((".wacz", ".zip")):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            return b"\n".join(z.read(n) + _unpacked(n, z.read(n)) for n in z.namelist())
    return b""


def forms(value: str) -> list[bytes]:
    return [v.encode() for v in {value, quote(value, safe=""), basic_credentials("me", value)}]


def test_private_feeds_get_credentials_at_their_origin_only_and_no_secret_is_kept(
        site: SiteServer, cdn: SiteServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    serve(site, cdn)
    sources = write_sources(tmp_path, sources_text(site.base))
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("".join(f"{k}: {v}\n" for k, v in SECRETS.items() if k != "FEED_TOKEN"))
    secrets.chmod(0o600)
    monkeypatch.setenv("FEED_TOKEN", SECRETS["FEED_TOKEN"])  # one from the environment
    archive = tmp_path / "data"
    run = postarc("crawl", "--sources", str(sources), "--archive", str(archive), "--secrets", str(secrets),
                  "-s", "LOG_LEVEL=DEBUG")  # DEBUG: every request's URL is logged
    assert run.returncode == 0, run.stderr[-3000:]

    # What the servers received: credentials at the feed's origin, none elsewhere.
    own = {path: headers for path, headers in site.log}
    assert own["/private/feed.xml"]["Authorization"] == f"Bearer {SECRETS['FEED_TOKEN']}"
    assert own["/private/feed.xml"]["X-Api-Key"] == SECRETS["FEED_KEY"]
    assert own["/private/a1.html"]["Authorization"] == f"Bearer {SECRETS['FEED_TOKEN']}"
    assert own["/private/own.png"]["X-Api-Key"] == SECRETS["FEED_KEY"]
    assert own["/basic/feed.xml"]["Authorization"] == "Basic " + basic_credentials("me", SECRETS["FEED_PASS"])
    assert own["/cookie/feed.xml"]["Cookie"] == f"session={SECRETS['FEED_COOKIE']}"
    assert "Cookie" not in own["/private/feed.xml"]  # the source's Set-Cookie is not sent back
    assert "Authorization" not in own["/robots.txt"]
    assert {p for p, _h in cdn.log} >= {"/article.html", "/landing.html", "/cdn.png"}
    for path, headers in cdn.log:  # another origin: article, redirect target, image
        assert not set(headers) & set(CRED_HEADERS), (path, headers)
        assert SECRETS["FEED_QTOKEN"] not in headers.get("Referer", "")

    # The capture is under the URL with the parameter's name kept, and posts name it so.
    feed_uri = f"{site.base}/private/feed.xml?token=REDACTED&lang=en"
    uris = {rec.rec_headers["WARC-Target-URI"] for _n, rec, _p in warc_records(archive)}
    assert feed_uri in uris
    records = [r for _n, r, _p in warc_records(archive) if r.rec_headers["WARC-Target-URI"] == feed_uri]
    request = next(r for r in records if r.rec_type == "request")
    assert request.http_headers.get_header("Authorization") == "Bearer REDACTED"
    assert request.http_headers.get_header("X-Api-Key") == "REDACTED"
    assert request.http_headers.get_header("Accept-Language") == "fr"  # not a secret: kept
    response = next(r for r in records if r.rec_type == "response")
    assert response.http_headers.get_header("Set-Cookie") == "session=REDACTED; Path=/; HttpOnly"
    posts = posts_of(archive)
    assert {fm["source"] for fm, _b in posts.values()} >= {feed_uri}
    assert len(posts) == 5

    wacz = tmp_path / "private.wacz"
    assert postarc("export-wacz", "--archive", str(archive), str(wacz)).returncode == 0
    replay = start_replay(archive)
    try:
        ts = "".join(c for c in response.rec_headers["WARC-Date"] if c.isdigit())[:14]
        status, _h, body = replay.get(f"/web/{ts}id_/{feed_uri}")
        assert status == 200 and b"Own page" in body
        served = b"".join(replay.get(p)[2] for p in ("/", f"/web/*/{feed_uri}"))
    finally:
        log = replay.stop()

    # Rebuilt from the WARC alone: the redacted captures are found, the posts come out the same.
    rebuilt = postarc("reextract", "--archive", str(archive))
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert {p: b for p, (_fm, b) in posts_of(archive).items()} == {p: b for p, (_fm, b) in posts.items()}

    kept = b"\n".join(every_byte(p) for p in [*archive.rglob("*"), wacz, sources] if p.is_file() and p != sources)
    kept += (run.stdout + run.stderr + rebuilt.stdout + rebuilt.stderr + log).encode() + served
    assert b"REDACTED" in kept
    for value in [*SECRETS.values(), SERVER_SESSION]:
        for form in forms(value):
            assert form not in kept, f"{value} found in what postarc wrote"


@pytest.mark.parametrize("entry, env, message", [
    ('auth: {type: bearer, token: "abc123inline"}', {}, "auth token is written inline"),
    ('headers: {X-Api-Key: abc123inline}', {}, "header X-Api-Key is written inline"),
    ("url_query: ?token=abc123inline", {}, "url parameter token is written inline"),
    ('auth: {type: bearer, token: "${NOT_SET_ANYWHERE}"}', {}, "${NOT_SET_ANYWHERE} is not set"),
    ('auth: {type: bearer, token: "${FEED_TOKEN}"}', {"mode": 0o644}, "can be read by others (mode 644)"),
])
def test_inline_unset_or_exposed_secrets_are_refused_before_any_request(
        site: SiteServer, tmp_path: Path, entry: str, env: dict, message: str):
    query = entry.removeprefix("url_query: ") if entry.startswith("url_query") else ""
    key = "" if query else entry
    sources = write_sources(tmp_path, f"sources:\n  - name: private\n    url: {site.base}/feed.xml{query}\n"
                                      + (f"    {key}\n" if key else ""))
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text("FEED_TOKEN: from-file\n")
    secrets.chmod(env.get("mode", 0o600))
    os.environ.pop("NOT_SET_ANYWHERE", None)
    run = postarc("crawl", "--sources", str(sources), "--archive", str(tmp_path / "data"), "--secrets", str(secrets))
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr
    assert "abc123inline" not in run.stderr
    assert site.log == []  # not one request
    assert not (tmp_path / "data" / "warc").exists()
