"""The sources file: which feeds to archive and how.

Validated with pydantic before any request is made; every problem is reported with the
file, the line and the reason, as a YAML or schema error alike.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

EVERY_RE = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
EVERY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SourcesError(ValueError):
    """A sources file that cannot be used; the message names file, line and reason."""


def _check_zone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


class Source(BaseModel):
    """One feed and how to archive it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    url: str = Field(min_length=1)
    categories: list[str] = Field(default_factory=list)
    schedule: str | None = None
    every: str | None = None
    follow_links: bool = False
    timezone: str = "UTC"
    gmt_is: str | None = None
    images: Literal["local", "remote"] | None = None
    image_proxy: str | None = None
    limit: int | None = Field(default=None, ge=1)
    enabled: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(https?|rsshub)://\S+$", value):
            raise ValueError("url must be http(s)://… or rsshub://route")
        return value

    @field_validator("timezone", "gmt_is")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return _check_zone(value)

    @field_validator("every")
    @classmethod
    def _every(cls, value: str | None) -> str | None:
        if value is not None and not EVERY_RE.match(value):
            raise ValueError("every must look like 30s, 10m, 2h or 1d")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from croniter import croniter

        if len(value.split()) != 5 or not croniter.is_valid(value):
            raise ValueError(f"schedule {value!r} is not a 5-field cron expression")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> Source:
        if self.schedule and self.every:
            raise ValueError("give either schedule or every, not both")
        return self

    @property
    def interval_s(self) -> int | None:
        """``every`` in seconds."""
        if not self.every:
            return None
        m = EVERY_RE.match(self.every)
        assert m
        return int(m.group(1)) * EVERY_UNITS[m.group(2)]


class SourcesFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rsshub: str = "https://rsshub.app"
    defaults: dict[str, Any] = Field(default_factory=dict)
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesFile:
        seen: set[str] = set()
        for s in self.sources:
            if s.name in seen:
                raise ValueError(f"source name {s.name!r} appears twice")
            seen.add(s.name)
        return self

    def feed_url(self, source: Source) -> str:
        """The URL to fetch: ``rsshub://route`` expands against the file's ``rsshub`` base."""
        if source.url.startswith("rsshub://"):
            return self.rsshub.rstrip("/") + "/" + source.url[len("rsshub://"):].lstrip("/")
        return source.url


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at pydantic's error location (deepest one that exists)."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def load_sources(path: str | Path) -> SourcesFile:
    """Read and validate a sources file; raise ``SourcesError`` naming file, line and reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesError(f"{path}: cannot read: {exc}") from exc
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SourcesError(f"{path}{where}: invalid YAML: {problem}") from exc
    if not isinstance(data, dict):
        raise SourcesError(f"{path}:1: expected a mapping with a 'sources:' list")
    defaults = data.get("defaults") or {}
    if isinstance(defaults, dict) and isinstance(data.get("sources"), list):
        data["sources"] = [{**defaults, **s} if isinstance(s, dict) else s for s in data["sources"]]
    try:
        return SourcesFile.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = _line_of(root, loc)
            field = ".".join(str(p) for p in loc) or "(file)"
            lines.append(f"{path}:{line or 1}: {field}: {err['msg']}")
        raise SourcesError("\n".join(lines)) from exc
