"""``require_tool``: a missing tool skips a test, except under CI, where it fails naming the tool."""

from __future__ import annotations

import pytest

from tests.conftest import require_tool


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_under_ci_a_missing_tool_fails_naming_it(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="missing: redis-server"):
        require_tool("redis-server", None)
    require_tool("redis-server", "/usr/bin/redis-server")  # found: nothing happens


@pytest.mark.parametrize("ci", [None, "", "false", "0"])
def test_elsewhere_a_missing_tool_skips(monkeypatch: pytest.MonkeyPatch, ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="missing: redis-server"):
        require_tool("redis-server", None)
