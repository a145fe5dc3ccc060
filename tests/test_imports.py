"""The project's import graph (grimp, import-linter's engine): the layering the code relies on.

- no import circles inside ``archive/`` or ``crawler/``: a circle makes import order matter and
  keeps a module from being read, tested or moved on its own;
- ``archive/`` is pure: it never imports ``crawler/``, ``pipelines/`` or Scrapy (a replay, a
  rebuild or a foreign WSGI host needs none of them);
- no pipeline imports a downloader middleware's module: what a pipeline needs of the crawl (the
  WARC capture) is a service it asks the crawler for, not a middleware it reaches into;
- a crawl process, which only hands pages to its workers, does not load the Markdown converter
  (markdownify, BeautifulSoup), the extractor (trafilatura, htmldate), the feed parser, the
  indexer (cdxj-indexer) or setuptools' pkg_resources when its modules load: each costs every
  run's start-up.

Imports under ``if TYPE_CHECKING:`` are left out: they never run. Imports inside functions count.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("archive", "crawler", "pipelines")
NOT_IN_ARCHIVE = ("crawler", "pipelines", "scrapy", "scrapy_redis", "twisted")
# The downloader middleware interface (Scrapy's docs: "Writing your own downloader middleware").
MIDDLEWARE_METHODS = {"process_request", "process_response", "process_exception"}
SCRAPY_DMW = "scrapy.downloadermiddlewares"


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, include_external_packages=True, exclude_type_checking_imports=True,
                             cache_dir=None)


def circles(package: str) -> list[list[str]]:
    """The import circles among ``package``'s modules: its strongly connected components (Tarjan)."""
    g = graph()
    modules = sorted(g.find_descendants(package) | {package})
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        for n in sorted(g.find_modules_directly_imported_by(m) & inside):
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while (n := stack.pop()) != m:
                component.append(n)
            component.append(m)
            if len(component) > 1:
                found.append(sorted(component))

    for m in modules:
        if m not in index:
            visit(m)
    return found


def describe(component: list[str]) -> str:
    """One circle of the component, spelled out: ``a -> b -> a``."""
    g = graph()
    first = component[0]
    for other in component[1:]:
        there, back = g.find_shortest_chain(first, other), g.find_shortest_chain(other, first)
        if there and back:
            return " -> ".join([*there, *back[1:]])
    return ", ".join(component)


def test_archive_has_no_import_circles() -> None:
    assert [describe(c) for c in circles("archive")] == []


def test_crawler_has_no_import_circles() -> None:
    assert [describe(c) for c in circles("crawler")] == []


def imports(importer: str, imported: str) -> list[str]:
    """``importer``'s imports matching ``imported`` (grimp's expression), each with its line."""
    g = graph()
    return [f"{i['importer']} imports {i['imported']} (line {d['line_number']})"
            for i in g.find_matching_direct_imports(f"{importer} -> {imported}")
            for d in g.get_import_details(importer=i["importer"], imported=i["imported"])]


def test_archive_imports_neither_crawler_nor_pipelines_nor_scrapy() -> None:
    found = [line for outside in NOT_IN_ARCHIVE if outside in graph().modules
             for line in imports("archive.**", outside) + imports("archive.**", f"{outside}.**")]
    assert found == []


def downloader_middleware_modules() -> set[str]:
    """Modules of the project that define a downloader middleware: a class with its methods, or
    one that extends a Scrapy downloader middleware."""
    found = set()
    for module in graph().modules:
        if not module.startswith(PACKAGES):
            continue
        base = REPO.joinpath(*module.split("."))
        path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        scrapy_middlewares = {alias.asname or alias.name for node in ast.walk(tree)
                              if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(SCRAPY_DMW)
                              for alias in node.names}
        for node in ast.walk(tree):
            if not isinstance(node, ast.ClassDef):
                continue
            methods = {f.name for f in node.body if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)}
            bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
            if methods & MIDDLEWARE_METHODS or bases & scrapy_middlewares:
                found.add(module)
    return found


def test_the_middleware_finder_finds_every_middleware_the_settings_name() -> None:
    """So that the next test can fail: it checks against every module the crawl loads as one."""
    from crawler.settings import DOWNLOADER_MIDDLEWARES

    ours = {path.rpartition(".")[0] for path in DOWNLOADER_MIDDLEWARES if path.startswith(PACKAGES)}
    assert ours and ours <= downloader_middleware_modules()


def test_no_pipeline_imports_a_downloader_middleware_module() -> None:
    found = [line for middleware in sorted(downloader_middleware_modules())
             for line in imports("pipelines.**", middleware)]
    assert found == []


#: Never imported by a crawl's own process when its modules load (they run in the pool's
#: workers, or only when called): each costs every run's start-up, 0.05-0.2 s.
NOT_IN_CRAWL_PROCESS = ("bs4", "markdownify", "pkg_resources", "trafilatura", "htmldate", "cdxj_indexer",
                        "feedparser")


def test_a_crawl_process_loads_no_extractor_converter_or_indexer() -> None:
    """Every component and spider the project's settings name, imported in a fresh interpreter."""
    script = (
        "import sys\n"
        "from scrapy.utils.misc import load_object, walk_modules\n"
        "from crawler import settings as s\n"
        "for table in (s.ITEM_PIPELINES, s.EXTENSIONS, s.DOWNLOADER_MIDDLEWARES, s.SPIDER_MIDDLEWARES):\n"
        "    [load_object(path) for path in table]\n"
        "[walk_modules(m) for m in s.SPIDER_MODULES]\n"
        "import crawler.commands.crawl\n"
        f"print(sorted(m for m in {NOT_IN_CRAWL_PROCESS!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
