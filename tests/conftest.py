"""Fixtures: real HTTP servers on 127.0.0.1 serving sample aggregators; and ``require_tool``,
which skips a test whose tool is missing, except under CI, where it fails naming the tool."""

from __future__ import annotations

import os
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


def in_ci() -> bool:
    """``CI`` is set (``.ci/run`` sets ``CI=true``, as CI services do)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_tool(name: str, found: object) -> None:
    """Skip the calling test when ``name`` (a program, a module, shared data) is not ``found``.

    Under CI it fails instead, naming what is missing: there ``tests/install-tools`` and the test
    extra installed everything, and a skip would turn a broken install green.
    """
    if found:
        return
    if in_ci():
        pytest.fail(f"missing: {name} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(f"missing: {name}")


def needs_tool(name: str, found: object) -> pytest.MarkDecorator:
    """``require_tool`` as a mark, for a test or a whole module (``pytestmark``), run at its setup."""
    return pytest.mark.needs_tool(name, bool(found))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "needs_tool(name, found): require_tool(name, found) before the test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Outside CI a ``needs_tool`` that is missing becomes pytest's own skip mark, reported at the test."""
    if in_ci():
        return
    for item in items:
        for mark in item.iter_markers("needs_tool"):
            name, found = mark.args
            if not found:
                item.add_marker(pytest.mark.skip(reason=f"missing: {name}"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under CI a missing ``needs_tool`` fails the test before its fixtures are set up."""
    if in_ci():
        for mark in item.iter_markers("needs_tool"):
            require_tool(*mark.args)
