"""Other tools read our archive: pywb replays it, cdxj-indexer indexes it, py-wacz packages it.

The archive: the demo aggregator plus a larger one (gzip and chunked pages, images), crawled,
then crawled again under other source names so that every page and image is fetched again and
stored as a ``revisit``: pywb must resolve those to the first capture.

pywb pins dependencies that clash with ours (``brotlipy`` installs a ``brotli`` module that
replaces the Brotli Scrapy needs, and it caps pyOpenSSL), so it lives in its own virtualenv:
``.venv-pywb`` at the top of the repository (``.ci/run`` creates it from
``tests/pywb-requirements.txt``) or the one named by ``POSTARC_PYWB_VENV``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from archive.cdxj import index_path, warc_paths
from crawler.demo.server import SiteServer
from crawler.demo.site import PROXY, build_routes, sources_yaml
from tests.conftest import require_tool
from tests.helpers import REPO, postarc, warcio_check
from tests.ports import start_server
from tests.sites import aggregator_routes

PYWB_BIN = Path(os.environ.get("POSTARC_PYWB_VENV", REPO / ".venv-pywb")) / "bin"


def renamed(sources: str, suffix: str) -> str:
    return "\n".join(line + suffix if line.lstrip().startswith("- name: ") else line for line in sources.splitlines())


@pytest.fixture(scope="module")
def archived(tmp_path_factory: pytest.TempPathFactory):
    """(archive, {article URL: bytes as sent}) after a crawl and a re-fetch crawl."""
    tmp = tmp_path_factory.mktemp("interop")
    archive = tmp / "data"
    with SiteServer() as site:
        site.routes.update(build_routes(site.base))
        site.routes.update(aggregator_routes(site.base))
        text = sources_yaml(site.base) + f"  - name: agg\n    url: {site.base}/feed.xml\n    follow_links: true\n"
        for n, suffix in enumerate(("", "-again")):
            sources = tmp / f"sources{n}.yaml"
            sources.write_text(renamed(text, suffix), encoding="utf-8")
            run = postarc("crawl", "--sources", str(sources), "--archive", str(archive))
            assert run.returncode == 0, run.stderr[-3000:]
        fetched = {path for path, _headers in site.log}
        articles = {site.url(path): res.wire_body() for path, res in site.routes.items()
                    if path.startswith("/posts/") and res.status == 200 and path in fetched}
    return archive, articles


def test_cdxj_indexer_indexes_every_file(archived):
    archive, _articles = archived
    lines = 0
    for path in warc_paths(archive):
        run = subprocess.run([sys.executable, "-m", "cdxj_indexer.main", str(path)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        lines += len(run.stdout.splitlines())
    assert lines == len(index_path(archive).read_text(encoding="utf-8").splitlines())


def test_export_wacz_is_valid(archived, tmp_path: Path):
    archive, articles = archived
    out = tmp_path / "archive.wacz"
    run = postarc("export-wacz", "--archive", str(archive), str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    check = subprocess.run([sys.executable, "-m", "wacz", "validate", "-f", str(out)], capture_output=True, text=True)
    assert check.returncode == 0 and "Validation succeeded" in check.stdout, check.stdout + check.stderr
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        pages = [json.loads(line) for line in z.read("pages/pages.jsonl").splitlines()[1:]]
    assert {f"archive/{p.name}" for p in warc_paths(archive)} <= names
    assert {p["url"] for p in pages} <= set(articles) and len(pages) >= len(articles) - 2


def test_verify_passes(archived):
    archive, _articles = archived
    warcio_check(archive)
    run = postarc("verify", "--archive", str(archive))
    assert run.returncode == 0, run.stdout[-3000:]


# -- pywb ---------------------------------------------------------------------------------------


def fetch(url: str) -> tuple[int, bytes]:
    """GET, accepting every content-coding (else pywb decodes gzip for the client)."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, deflate, br"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def pywb(archived, tmp_path_factory: pytest.TempPathFactory):
    """pywb serving two collections: ``added`` (indexed by ``wb-manager add``) and ``ours``
    (our WARC files with our ``index.cdxj`` as its index)."""
    require_tool(f"pywb's venv at {PYWB_BIN.parent} (tests/install-tools; POSTARC_PYWB_VENV)",
                 (PYWB_BIN / "wayback").exists())
    archive, _articles = archived
    root = tmp_path_factory.mktemp("pywb")
    env = {**os.environ, "PATH": f"{PYWB_BIN}{os.pathsep}{os.environ['PATH']}"}

    def wb_manager(*args: str) -> None:
        run = subprocess.run([str(PYWB_BIN / "wb-manager"), *args], cwd=root, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr

    wb_manager("init", "added")
    wb_manager("add", "added", *map(str, warc_paths(archive)))
    wb_manager("init", "ours")
    for path in warc_paths(archive):
        shutil.copy(path, root / "collections" / "ours" / "archive")
    shutil.copy(index_path(archive), root / "collections" / "ours" / "indexes" / "index.cdxj")

    def start(port: int) -> subprocess.Popen:  # with -p 0 it would not say which port it took
        return subprocess.Popen([str(PYWB_BIN / "wayback"), "-p", str(port), "-b", "127.0.0.1"], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    server, port = start_server(start, lambda port: fetch_ready(f"http://127.0.0.1:{port}"), "pywb")
    try:
        yield f"http://127.0.0.1:{port}", root
    finally:
        server.terminate()
        server.wait(timeout=30)


def fetch_ready(base: str) -> bool:
    try:
        return fetch(base + "/")[0] == 200
    except OSError:
        return False


def captures(archive: Path) -> dict[str, list[tuple[str, str]]]:
    """url -> [(timestamp, mime)] from our index."""
    out: dict[str, list[tuple[str, str]]] = {}
    for line in index_path(archive).read_text(encoding="utf-8").splitlines():
        _key, timestamp, fields = line.split(" ", 2)
        data = json.loads(fields)
        out.setdefault(data["url"], []).append((timestamp, data["mime"]))
    return out


@pytest.mark.parametrize("collection", ["added", "ours"])
def test_pywb_replays_every_article_as_sent(archived, pywb, collection):
    archive, articles = archived
    base, _root = pywb
    by_url = captures(archive)
    replayed = 0
    for url, sent in sorted(articles.items()):
        stamps = by_url.get(url)
        assert stamps, f"{url} not archived"
        assert any(mime == "warc/revisit" for _t, mime in stamps), f"{url} was not fetched again"
        for timestamp, _mime in stamps:  # the first capture and the revisit of it
            status, body = fetch(f"{base}/{collection}/{timestamp}id_/{url}")
            assert status == 200, (url, timestamp, status)
            assert body == sent, (url, timestamp)
            replayed += 1
    print(f"\npywb ({collection}): {len(articles)} articles, {replayed} captures replayed byte for byte")
    assert replayed >= 2 * len(articles)


@pytest.mark.parametrize("collection", ["added", "ours"])
def test_pywb_shows_a_proxied_image_under_the_url_the_page_names(archived, pywb, collection):
    """The demo's page names its image through a CORS proxy; postarc fetched the unwrapped URL
    and recorded a revisit under the proxied one (pipelines.aliases), which pywb resolves."""
    archive, _articles = archived
    base, _root = pywb
    by_url = captures(archive)
    proxied = [url for url in by_url if url.startswith(PROXY)]
    assert proxied, "no record under the proxied image URL"
    for url in proxied:
        origin = url[len(PROXY):]
        _status, image = fetch(f"{base}/{collection}/{by_url[origin][0][0]}id_/{origin}")
        for timestamp, mime in by_url[url]:
            assert mime == "warc/revisit"
            status, body = fetch(f"{base}/{collection}/{timestamp}id_/{url}")
            assert (status, body) == (200, image), (url, timestamp, status)
