"""Tools a test needs besides Python packages: missing, a test skips on a developer's machine
and fails under CI=true, naming the tool (tests/install-tools installs them)."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from importlib.util import find_spec

from tests import conftest


def require_tool(name: str) -> str:
    """The path of command ``name``; skip (fail under CI: ``conftest.require_tool``) if it is not on PATH."""
    path = shutil.which(name)
    conftest.require_tool(f"{name} (tests/install-tools)", path)
    assert path is not None
    return path


@contextlib.contextmanager
def chromium_driver() -> Iterator[object]:
    """Headless Debian Chromium driven by Selenium (both needed: skip, or fail under CI)."""
    conftest.require_tool("selenium (the test extra: pip install -e '.[test]')", find_spec("selenium"))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require_tool("chromium")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(require_tool("chromedriver")), options=options)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
