"""bench.pages runs end to end (real server, real ``postarc archive``) and scores what it should.

Three generated article pages, each wrapped in navigation and a footer, with a reference
extraction beside it as in ``../shared/pages/readability``.
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.pages import REPO, author_agrees, date_agrees, prf, title_agrees, tokens

_ENGLISH = [
    "The river rose overnight and by morning the old bridge at Millford stood in brown water.",
    "Engineers from the county closed the crossing at six, diverting traffic through the valley road.",
    "Residents said the last flood of this size came in 1987, when the mill itself was lost.",
    "The council will meet on Thursday to decide whether the bridge can be repaired or must be rebuilt.",
]
_CHINESE = [
    "今年夏天，城市图书馆延长了开放时间，许多学生在这里复习功课。",
    "馆长表示，新的阅览室将在九月开放，并提供更多的中文和外文书籍。",
    "附近的居民也很高兴，因为他们终于有了一个安静的地方读书和交流。",
]
_FRENCH = [
    "Le marché du samedi a retrouvé ses habitués après trois semaines de travaux sur la place.",
    "Les producteurs de fromage et de légumes ont repris leurs emplacements habituels dès l'aube.",
    "La mairie promet que les nouveaux pavés resteront en place pendant au moins vingt ans.",
]


def _page(title: str, author: str, date: str, paragraphs: list[str], image: str | None) -> tuple[str, str]:
    figure = f'<figure><img src="{image}" alt="photo"><figcaption>{paragraphs[0][:30]}</figcaption></figure>' \
        if image else ""
    body = figure + "".join(f"<p>{p}</p>" for p in paragraphs)
    nav = "".join(f'<li><a href="/section/{i}">Section {i}</a></li>' for i in range(12))
    source = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title} | The Daily</title>'
              f'<meta name="author" content="{author}">'
              f'<meta property="article:published_time" content="{date}"></head><body>'
              f'<header><nav><ul>{nav}</ul></nav></header>'
              f'<article><h1>{title}</h1>{body}</article>'
              f'<footer><p>Copyright The Daily. All rights reserved.</p><ul>{nav}</ul></footer></body></html>')
    return source, f"<div>{body}</div>"


def test_bench_pages_scores_generated_pages(tmp_path):
    pages = {
        "flood": ("Flood closes Millford bridge", "Ann Smith", "2024-03-05T08:00:00+01:00", _ENGLISH,
                  "/images/bridge.jpg"),
        "library": ("城市图书馆延长开放时间", "李明", "2024-07-01", _CHINESE, "https://cdn.example/lib.jpg"),
        "market": ("Le marché revient sur la place", "Marie Dupont", "2024-05-11T10:30:00Z", _FRENCH, None),
    }
    for name, (title, author, date, paragraphs, image) in pages.items():
        folder = tmp_path / name
        folder.mkdir()
        source, expected = _page(title, author, date, paragraphs, image)
        (folder / "source.html").write_text(source, encoding="utf-8")
        (folder / "expected.html").write_text(expected, encoding="utf-8")
        (folder / "expected-metadata.json").write_text(json.dumps(
            {"title": title, "byline": f"By {author}", "publishedTime": date}), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "bench.pages", str(tmp_path), "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert figures["pages"] == 3
    keys = {"precision", "recall", "f1", "image_recall", "title", "author", "date"}
    assert set(figures["postarc"]) == set(figures["trafilatura"]) == keys
    postarc = figures["postarc"]
    # The articles are plain: postarc keeps most of each, images and its metadata.
    assert postarc["recall"] > 0.9 and postarc["f1"] > 0.8, postarc
    assert postarc["image_recall"] > 0
    assert postarc["title"] == postarc["author"] == postarc["date"] == 1.0
    # trafilatura's default output is text: no images to find.
    assert figures["trafilatura"]["image_recall"] == 0.0


def test_scorer_reads_text_as_a_reader_does():
    assert tokens("Hello, World! 城市图书馆") == {"hello": 1, "world": 1, "城": 1, "市": 1, "图": 1, "书": 1, "馆": 1}
    assert prf("a b c d", "a b c d") == (1.0, 1.0, 1.0)
    p, r, f = prf("a b", "a b c d")
    assert (p, r) == (1.0, 0.5) and round(f, 3) == 0.667
    assert prf("", "a") == (0.0, 0.0, 0.0)
    assert title_agrees("Mozilla", "Mozilla - Wikipedia") and not title_agrees("Lorem", "Base URL test")
    assert author_agrees("Erin Cunningham", "By Erin Cunningham") and not author_agrees("Username", "By Erin")
    assert date_agrees("2017-01-13T08:38:38Z", "2017-01-13T03:38:38-05:00")
    assert not date_agrees("2017-01-15T00:00:00Z", "2017-01-13")
