"""Fixtures: real HTTP servers on 127.0.0.1 serving sample aggregators."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crawler.demo.server import SiteServer
from crawler.demo.site import build_routes, sources_yaml
from tests.helpers import write_sources


@pytest.fixture
def site() -> Iterator[SiteServer]:
    with SiteServer() as server:
        yield server


@pytest.fixture
def demo_site(site: SiteServer) -> SiteServer:
    site.routes.update(build_routes(site.base))
    return site


@pytest.fixture
def demo_sources(demo_site: SiteServer, tmp_path: Path) -> Path:
    return write_sources(tmp_path, sources_yaml(demo_site.base))
