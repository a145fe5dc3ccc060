"""Tools a test needs besides Python packages: missing, a test skips on a developer's machine
and fails under CI=true, naming the tool (tests/install-tools installs them)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest


def require_tool(name: str) -> str:
    """The path of command ``name``; skip (fail under CI) if it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (tests/install-tools)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextlib.contextmanager
def chromium_driver() -> Iterator[object]:
    """Headless Debian Chromium driven by Selenium (both needed: skip, or fail under CI)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the test extra")
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
