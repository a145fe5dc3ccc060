"""How far a source's feed history (RFC 5005) has been read: ``backfill: true``.

An archived feed links its older documents with ``rel="prev-archive"`` (immutable, by the
RFC), a paged feed its next page with ``rel="next"``. The first runs walk those links, up to
``backfill_pages`` documents past the head; the catalogue keeps which were read and which one
comes next (column ``sources.backfill``, JSON), so a walk cut short by a failure or a stop
resumes there, no document is fetched twice, and once it is done later runs read the head only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field


@dataclass
class History:
    fetched: list[str] = field(default_factory=list)  # history documents read, in order
    next: str | None = None  # the document to read next (one that failed, or was not reached)
    done: bool = False

    @classmethod
    def loads(cls, text: str | None) -> History:
        if not text:
            return cls()
        try:
            data = json.loads(text)
            return cls(fetched=list(data.get("fetched") or []), next=data.get("next"), done=bool(data.get("done")))
        except (ValueError, AttributeError, TypeError):
            return cls()

    def dumps(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)

    def step(self, link: str | None, limit: int) -> str | None:
        """The document to read after one whose history link is ``link``; ``None`` (done) at the
        end, at a loop back to a document read already, or past ``limit`` documents."""
        if not link or link in self.fetched or len(self.fetched) >= limit:
            self.next, self.done = None, True
            return None
        self.next = link
        return link
