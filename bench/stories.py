"""The story fingerprint's threshold, measured: ``python -m bench.stories [CORPUS_DIR] [--json]``.

Every corpus post's body goes through the crawl's own path (``archive.extract.choose_body``,
which computes ``archive.stories.sketch``), and so do syndicated variants made from it: other
boilerplate around it, truncated, re-wrapped (other markup, other paragraph breaks), other
images, all of those at once. Prints the estimated containment of every pair of distinct posts
(none may reach ``CONTAINMENT``) and of every post with its variants (all should), and how many
of each ``same_story`` merges.
"""

from __future__ import annotations

import argparse
import json
import re
from itertools import combinations
from pathlib import Path
from statistics import quantiles
from typing import Any

from archive.extract import choose_body
from archive.stories import CONTAINMENT, MIN_SHINGLES, containment, same_story
from bench.corpus import load_corpus

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
_BOILER_TOP = ("<p>本文转载自合作媒体，原标题见文末。Republished with permission from our partner site; "
               "follow us for more stories like this one.</p>")
_BOILER_END = ("<p>Share this: Twitter Facebook WeChat Weibo. Subscribe to our newsletter for the week's best "
               "stories. 关注我们的公众号，获取更多科技资讯。Copyright © 2022 Partner Media. All rights reserved.</p>"
               "<ul><li>Related: Ten gadgets to watch this year</li><li>相关阅读：本周热门文章</li></ul>")
_BLOCK = re.compile(r"</?(?:p|div|section|article)\b[^>]*>", re.I)
_IMG = re.compile(r"<img\b[^>]*>", re.I)


def _paragraphs(html: str) -> list[str]:
    return [p for p in (part.strip() for part in _BLOCK.split(html)) if p]


def boilerplate(html: str) -> str:
    return _BOILER_TOP + html + _BOILER_END


def truncated(html: str, share: float = 0.5) -> str:
    """The first half of the post's text, as an excerpt ends."""
    paras = _paragraphs(html)
    text = sum(len(p) for p in paras)
    kept, size = [], 0
    for p in paras:
        if kept and size >= share * text:
            break
        kept.append(p)
        size += len(p)
    return "".join(f"<p>{p}</p>" for p in kept) + "<p>Read more…</p>"


def rewrapped(html: str) -> str:
    """Other markup: every block a <div>, two paragraphs joined by a <br>, spaces doubled."""
    paras = _paragraphs(html)
    pairs = ["<br>\n".join(paras[i:i + 2]) for i in range(0, len(paras), 2)]
    return "".join(f"<div class='c'>\n  {p.replace(' ', '  ')}\n</div>\n" for p in pairs)


def other_images(html: str) -> str:
    return _IMG.sub('<img src="https://cdn.partner.example/img/x.jpg" alt="">', html)


VARIANTS = {"boilerplate": boilerplate, "truncated": truncated, "rewrapped": rewrapped, "images": other_images,
            "all": lambda h: boilerplate(other_images(rewrapped(truncated(h))))}


def _describe(values: list[float]) -> dict[str, float]:
    qs = quantiles(values, n=20) if len(values) > 1 else values * 19
    return {"min": round(min(values), 3), "p5": round(qs[0], 3), "median": round(qs[9], 3),
            "p95": round(qs[18], 3), "max": round(max(values), 3)}


def measure(corpus: Path) -> dict[str, Any]:
    posts = load_corpus(corpus)
    base = "https://origin.example/a"
    sketches = {p.key: choose_body(p.html, base).sketch for p in posts}
    long_enough = {k: s for k, s in sketches.items() if s[0] >= MIN_SHINGLES}
    distinct = [containment(a, b) for a, b in combinations(long_enough.values(), 2)]
    merged_distinct = sum(same_story(a, b) for a, b in combinations(sketches.values(), 2))
    variants: dict[str, list[float]] = {}
    caught: dict[str, int] = {}
    for name, make in VARIANTS.items():
        scores, hits = [], 0
        for p in posts:
            if p.key not in long_enough:
                continue
            other = choose_body(make(p.html), "https://partner.example/b").sketch
            scores.append(containment(sketches[p.key], other))
            hits += same_story(sketches[p.key], other)
        variants[name], caught[name] = scores, hits
    return {
        "posts": len(posts), "judged": len(long_enough), "threshold": CONTAINMENT, "min_shingles": MIN_SHINGLES,
        "distinct_pairs": len(distinct), "distinct": _describe(distinct), "distinct_merged": merged_distinct,
        "variants": {name: {**_describe(v), "caught": caught[name], "of": len(v)} for name, v in variants.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=CORPUS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.corpus)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
        return
    print(f"{result['posts']} posts, {result['judged']} of at least {MIN_SHINGLES} shingles; "
          f"threshold: containment >= {CONTAINMENT}")
    print(f"{'pairs':<14}{'min':>7}{'p5':>7}{'median':>8}{'p95':>7}{'max':>7}  merged")
    d = result["distinct"]
    print(f"{'distinct':<14}{d['min']:>7}{d['p5']:>7}{d['median']:>8}{d['p95']:>7}{d['max']:>7}  "
          f"{result['distinct_merged']} of {result['distinct_pairs']}")
    for name, v in result["variants"].items():
        print(f"{name:<14}{v['min']:>7}{v['p5']:>7}{v['median']:>8}{v['p95']:>7}{v['max']:>7}  "
              f"{v['caught']} of {v['of']}")


if __name__ == "__main__":
    main()
