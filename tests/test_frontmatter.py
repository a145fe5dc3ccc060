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


# Titles as feeds write them: quotes, YAML indicators, control characters, the line breaks YAML
# readers fold, a BOM, CJK, emoji (beyond the BMP), a lone surrogate, a very long one.
HOSTILE = ["plain", "'quoted' \"both\"", "a: b # c", "- item", "? key", "!tag &anchor *alias", "%YAML", "@at `tick`",
           "yes", "No", "null", "~", "1e3", "0x1F", "  padded  ", "tab\there", "line\nbreak", "bell\x07esc\x1b\x7f",
           "nel\x85ls\u2028ps\u2029", "\ufeffbom", "zero\u200bwidth", "研华基于NXP i．MX8M", "émoji 😀 and 𝄞",
           "lone \ud800 surrogate", "\ufffe\uffff", "long " * 3000, ""]


def test_front_matter_is_what_pyyaml_s_own_emitter_writes():
    """libyaml's faster emitter is used only where it writes the same bytes as PyYAML's."""
    import yaml

    from archive.frontmatter import _Dumper

    when = datetime(2026, 12, 2, 14, 0, tzinfo=timezone.utc)
    for title in HOSTILE:
        fields = {"title": title, "categories": [title, "新媒体"], "author": title[:100], "comments": False,
                  "date": when, "enclosures": [{"url": f"http://example.org/{title[:20]}", "length": 12}]}
        expected = "---\n" + yaml.dump(fields, Dumper=_Dumper, allow_unicode=True, sort_keys=False,
                                       default_flow_style=False, width=10_000) + "---\n"
        text = front_matter(fields)
        assert text == expected, title
        meta, _ = read_front_matter(text + "\nbody\n")
        assert meta["title"] == title
    assert "title: émoji 😀 and 𝄞\n" in front_matter({"title": "émoji 😀 and 𝄞"})  # as it is, not \U0001F600
