"""The replay in a real headless browser (Debian's Chromium, driven by Selenium), origin gone:
index, a Chinese search, a post with its images, the capture it came from, no archived script."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_tool
from tests.replay_helpers import Replay, demo_archive, start_replay

try:
    from selenium import webdriver
except ImportError:  # needs_tool below says so
    webdriver = None

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = [
    needs_tool("selenium (the test extra: pip install -e '.[test]')", webdriver),
    needs_tool(f"Chromium at {CHROMIUM} (tests/install-tools: apt-get install chromium)", CHROMIUM.exists()),
    needs_tool(f"chromedriver at {CHROMEDRIVER} (tests/install-tools: apt-get install chromium-driver)",
               CHROMEDRIVER.exists()),
]

PHRASE = "应急局的安全生产"


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    tmp = tmp_path_factory.mktemp("browser")
    archive = tmp / "data"
    demo_archive(archive, tmp)
    server = start_replay(archive)
    server.wait_for_search()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-dev-shm-usage",
                "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def images_shown(driver) -> list[tuple[str, int]]:
    """(src, natural width) of every image of the page; 0 means it did not load."""
    from selenium.webdriver.common.by import By

    return [(img.get_attribute("src"), int(img.get_property("naturalWidth") or 0))
            for img in driver.find_elements(By.TAG_NAME, "img")]


def test_index_search_post_and_capture(replay, browser):
    from selenium.webdriver.common.by import By

    browser.get(replay.base + "/")
    titles = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.title")]
    assert len(titles) == 8 and "以生产安全托底防疫安全：港区应急局一直在路上！" in titles
    assert browser.find_elements(By.CSS_SELECTOR, "svg.bars rect")  # the per-source chart is drawn

    box = browser.find_element(By.CSS_SELECTOR, "form.filters input[name=q]")
    box.send_keys(PHRASE)
    box.submit()
    results = browser.find_elements(By.CSS_SELECTOR, "li.post")
    assert len(results) == 1
    assert browser.find_element(By.CSS_SELECTOR, "li.post mark").text == PHRASE

    results[0].find_element(By.CSS_SELECTOR, "a.title").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "以生产安全托底防疫安全：港区应急局一直在路上！"
    body = browser.find_element(By.CSS_SELECTOR, "div.body").text
    assert "不曾停歇的监管脚步" in body and "工贸企业：13 家" in body
    shown = images_shown(browser)
    assert shown and all(width == 64 for _src, width in shown), shown  # the local copy, 64×40

    browser.find_element(By.CSS_SELECTOR, "a.original-capture").click()
    assert "/web/" in browser.current_url
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "近日，在封闭生产的港区某企业里" in page and "沙发！" in page  # the page as captured
    assert "postarc archive · captured" in page
    shown = images_shown(browser)
    assert shown and all(width == 64 for _src, width in shown), shown  # served from the WARC


def test_archived_scripts_do_not_run(replay, browser):
    from selenium.webdriver.common.by import By

    browser.get(replay.base + "/?q=" + "带脚本")
    browser.find_element(By.CSS_SELECTOR, "li.post a.title").click()
    browser.find_element(By.CSS_SELECTOR, "section.captures li a").click()  # the article page's capture
    assert "这一页带着脚本" in browser.find_element(By.TAG_NAME, "body").text
    assert browser.title == "脚本页面"  # the page's script would have renamed it
