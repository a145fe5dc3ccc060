"""The README and docs/ as a reader meets them: the test command CI runs is the README's, the
README stays a few screens, and every link between them leads to a file and heading that exist."""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

from tests.helpers import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def parsed(path: Path) -> tuple[set[str], list[str]]:
    """The anchors of a Markdown file's headings and the targets of its links, as rendered."""
    tokens = MarkdownIt("commonmark").enable("table").parse(path.read_text(encoding="utf-8"))
    anchors, links = set(), []
    for i, token in enumerate(tokens):
        if token.type == "heading_open":
            anchors.add(slug(tokens[i + 1].content.replace("`", "")))
        for child in token.children or []:
            if child.type == "link_open":
                links.append(child.attrs["href"])
    return anchors, links


def test_ci_runs_the_readme_test_command_with_ci_set() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = "pip install -e '.[test]' && tests/install-tools && python -m pytest -n 2 --dist loadfile"
    assert f"```sh\n{command}\n```" in readme
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert ci[-1] == command and "export CI=true" in ci


def test_readme_stays_a_few_screens() -> None:
    assert len((REPO / "README.md").read_bytes()) < 25_000


def test_links_between_readme_and_docs_resolve() -> None:
    anchors = {path: parsed(path)[0] for path in DOCS}
    broken = []
    for path in DOCS:
        for href in parsed(path)[1]:
            if re.match(r"[a-z]+:", href):
                continue  # http(s), mailto: not ours to check offline
            file, _, anchor = href.partition("#")
            target = (path.parent / file).resolve() if file else path
            if not target.exists() or (anchor and target in anchors and anchor not in anchors[target]):
                broken.append(f"{path.relative_to(REPO)}: {href}")
    assert not broken
