"""A post file's YAML front matter, written and read: the one parser of it in the project.

Front matter is emitted by PyYAML, never by string formatting, so any title survives the trip.
It is read back by the pipeline's tests, the replay's post pages and its search index alike.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from typing import Any

import yaml

# libyaml: ~7x faster on 10 000 posts, but it refuses escapes PyYAML's emitter writes (a lone
# surrogate as "\ud800"): what it refuses is read again by PyYAML's own loader.
_LOADERS = tuple(dict.fromkeys((getattr(yaml, "CSafeLoader", yaml.SafeLoader), yaml.SafeLoader)))
_YAML_BREAKS = ("\x85", "\u2028", "\u2029")


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes aware datetimes as plain ISO 8601 UTC (``…Z``) timestamps.

    No anchors and aliases: a value used twice (``archived`` and ``updated`` are one datetime)
    is written twice, as a reader of the file and simpler front-matter parsers expect, not as
    ``&id001`` and ``*id001``.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_datetime(dumper: yaml.SafeDumper, value: datetime) -> yaml.Node:
    text = value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return dumper.represent_scalar("tag:yaml.org,2002:timestamp", text)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # PyYAML writes NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR raw into plain and single-quoted
    # scalars when allow_unicode is on, and YAML readers fold them (a NEL comes back as a space):
    # a string holding one goes double-quoted, where they are escaped (\N, \L, \P).
    style = '"' if any(c in value for c in _YAML_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(datetime, _represent_datetime)
_Dumper.add_representer(str, _represent_str)

class _FastDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """``_Dumper`` with libyaml's emitter: the same front matter, about 5x less CPU.

    libyaml's emitter is a port of PyYAML's; measured over 33 000 random front matters (quotes,
    colons, control characters, NEL/LS/PS, BOMs, CJK, 12 000-character titles) both wrote the
    same bytes, except where a string holds a character beyond the BMP (libyaml escapes an emoji
    as ``\\U0001F600``, PyYAML writes it as it is) or a lone surrogate (libyaml refuses it).
    ``front_matter`` gives such fields to ``_Dumper``.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


_FastDumper.add_representer(datetime, _represent_datetime)
_FastDumper.add_representer(str, _represent_str)
_BEYOND_LIBYAML = re.compile("[\ud800-\udfff\U00010000-\U0010ffff]")


def _pyyaml_only(value: Any) -> bool:
    """``value`` holds a string libyaml writes otherwise than PyYAML (see ``_FastDumper``)."""
    if isinstance(value, str):
        return not value.isascii() and _BEYOND_LIBYAML.search(value) is not None
    if isinstance(value, dict):
        return any(_pyyaml_only(k) or _pyyaml_only(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_pyyaml_only(v) for v in value)
    return False


def front_matter(fields: dict[str, Any]) -> str:
    """The ``---`` fenced YAML block; ``None`` values are left out."""
    data = {k: v for k, v in fields.items() if v is not None}
    dumper = _Dumper if _pyyaml_only(data) else _FastDumper
    text = yaml.dump(data, Dumper=dumper, allow_unicode=True, sort_keys=False,
                     default_flow_style=False, width=10_000)
    return f"---\n{text}---\n"


def render_post(fields: dict[str, Any], body: str) -> str:
    """A post file: front matter, a blank line, the body."""
    return front_matter(fields) + "\n" + body.rstrip("\n") + "\n"


def read_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split a post into (front matter, body): the inverse of ``render_post``.

    A post edited by hand can hold anything: front matter that is not YAML, or not a mapping,
    reads as none (``{}``) rather than failing the page or the search index that reads it.
    """
    if not text.startswith("---\n"):
        return {}, text
    end = text.find("\n---\n", 3)
    if end < 0:
        return {}, text
    return _mapping(text[4:end + 1]), text[end + 5:].lstrip("\n")


def _mapping(block: str) -> dict[str, Any]:
    for loader in _LOADERS:
        try:
            meta = yaml.load(block, Loader=loader)
        except yaml.YAMLError:
            continue
        return meta if isinstance(meta, dict) else {}
    return {}


def with_story(text: str, sources: list[str], categories: list[str]) -> str | None:
    """A post file with its story's ``sources:`` (after ``source:``) and ``categories:`` set
    (``pipelines.stories``), the rest as it was; None if it has them already (nothing to write)
    or has no front matter to set them in."""
    meta, body = read_front_matter(text)
    if not meta or (meta.get("sources") == sources and meta.get("categories") == categories):
        return None
    fields: dict[str, Any] = {}
    for key, value in meta.items():
        if key == "sources":
            continue
        fields[key] = categories if key == "categories" else value
        if key == "source":
            fields["sources"] = sources
    fields.setdefault("categories", categories)
    fields.setdefault("sources", sources)
    return render_post(fields, body)


_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_TAG = re.compile(r"<[^>]+>")
_MARKUP = re.compile(r"^[#>\-*+ \t|:]+|[*_`]+", re.MULTILINE)


def post_text(markdown: str) -> tuple[str, str]:
    """(title, plain text) of a post file: front matter title, body without markup.

    A handful of regular expressions, not a Markdown parser: search (and the story index made
    for an older archive) only needs the words, and parsing 10 000 posts with a full renderer would take most of a minute.
    """
    meta, body = read_front_matter(markdown)
    return str(meta.get("title", "")), body_words(body)


def body_words(body: str) -> str:
    """A post body's text without its Markdown and HTML markup, whitespace folded."""
    body = _LINK.sub(r"\1", _IMAGE.sub(r"\1", body))
    body = html.unescape(_TAG.sub(" ", body))
    body = _MARKUP.sub("", body)
    return re.sub(r"\s+", " ", body).strip()
