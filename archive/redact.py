"""Secrets out of what is kept: URLs, header values, log lines.

A private feed's token, password or session cookie must not reach a WARC file, a post, the
catalogue or a log, so that the archive can be shared. Each is replaced by the fixed text
``REDACTED``; a URL keeps the names of its secret query parameters (``?token=REDACTED``) so
that the capture is still found under the URL a post and the replay name.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

REDACTED = "REDACTED"


def basic_credentials(username: str, password: str) -> str:
    """The ``Authorization: Basic`` token of a user and password (RFC 7617)."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


@dataclass
class Redactor:
    """Replaces known secret values, and the values of secret query parameters."""

    values: set[str] = field(default_factory=set)
    params: set[str] = field(default_factory=set)
    _forms: list[str] = field(default_factory=list, init=False, repr=False)
    _param_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        forms = {f for v in self.values if v for f in (v, quote(v, safe=""), quote_plus(v))}
        self._forms = sorted(forms, key=len, reverse=True)  # longest first: no half-replaced value
        if self.params:
            names = "|".join(re.escape(quote_plus(p)) for p in sorted(self.params, key=len, reverse=True))
            self._param_re = re.compile(rf"([?&;](?:{names})=)[^&#\s\"'<>]*")

    def __bool__(self) -> bool:
        return bool(self._forms or self.params)

    def text(self, value: str) -> str:
        """``value`` (a URL, a header, a log line) with every secret ``REDACTED``: the known
        values, and what follows ``?name=`` or ``&name=`` for a secret parameter, name kept."""
        if self._param_re is not None:
            value = self._param_re.sub(lambda m: m.group(1) + REDACTED, value)
        for form in self._forms:
            if form in value:
                value = value.replace(form, REDACTED)
        return value

    @staticmethod
    def set_cookie(value: str) -> str:
        """A ``Set-Cookie`` value with the cookie's own value ``REDACTED`` (attributes kept)."""
        pair, semi, attributes = value.partition(";")
        name, eq, _ = pair.partition("=")
        return f"{name}={REDACTED}{semi}{attributes}" if eq else REDACTED
