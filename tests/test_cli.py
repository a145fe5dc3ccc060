"""``postarc --help`` lists postarc's own commands, and each one's usage says ``postarc``."""

from __future__ import annotations

import pkgutil

import crawler.commands
from tests.helpers import postarc


def test_help_lists_the_commands_package_only() -> None:
    run = postarc("--help")
    assert run.returncode == 0, run.stderr
    listed = [line.split()[0] for line in run.stdout.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines()]
    modules = sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(crawler.commands.__path__))
    assert listed == modules
    assert "bench" not in listed and "genspider" not in listed


def test_scrapy_tools_are_not_postarc_commands() -> None:
    run = postarc("bench")
    assert run.returncode == 2
    assert "unknown command 'bench'" in run.stderr and "scrapy bench" in run.stderr


def test_usage_line_names_postarc() -> None:
    run = postarc("export-wacz", "-h")
    assert run.returncode == 0, run.stderr
    assert "  postarc export-wacz [--archive DIR]" in run.stdout
    assert "scrapy" not in run.stdout.split("Options", 1)[0]
