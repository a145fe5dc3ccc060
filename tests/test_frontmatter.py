"""Front matter as Hexo and simple front-matter readers take it: plain YAML, no anchors."""

from __future__ import annotations

from datetime import datetime, timezone

from archive.frontmatter import front_matter, read_front_matter


def test_a_value_used_twice_is_written_twice_not_as_an_alias():
    when = datetime(2026, 12, 2, 14, 0, tzinfo=timezone.utc)
    shared = ["新媒体", "示例"]
    text = front_matter({"title": "t", "archived": when, "updated": when, "categories": shared, "tags": shared})
    assert "&id" not in text and "*id" not in text
    assert "archived: 2026-12-02T14:00:00Z\nupdated: 2026-12-02T14:00:00Z\n" in text
    meta, _ = read_front_matter(text + "\nbody\n")
    assert meta["categories"] == meta["tags"] == shared
