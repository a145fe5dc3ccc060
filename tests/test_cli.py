"""``postarc --help`` lists postarc's own commands, each one's usage says ``postarc``, and an option no
command knows is refused, while Scrapy's own (``-s``, ``--loglevel``, ``--logfile``…) still work."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from scrapy import cmdline

import crawler.commands
from crawler.cli import commands, main
from crawler.exitcodes import EXIT_USAGE
from tests.helpers import REPO, postarc, write_sources


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


def test_a_command_is_looked_up_without_importing_scrapys_own() -> None:
    """Scrapy's command line imports all its own command modules and the project's to find the one
    typed; postarc's looks in that command's module only (``crawl`` builds on Scrapy's)."""
    code = ("import sys, crawler.cli\n"
            "try:\n    crawler.cli.main(['crawl', '--help'])\nexcept SystemExit as e:\n    code = e.code\n"
            "print(code, sorted(m for m in sys.modules if m.startswith(('scrapy.commands.', 'crawler.commands.'))))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert "postarc crawl" in run.stdout, run.stderr
    assert run.stdout.splitlines()[-1] == "0 ['crawler.commands.crawl', 'scrapy.commands.crawl']"


def test_crawl_refuses_an_unknown_option_in_one_line_before_doing_anything(tmp_path: Path) -> None:
    sources = write_sources(tmp_path, "sources:\n  - {name: a, url: 'http://127.0.0.1:9/feed'}\n")
    archive = tmp_path / "data"
    run = postarc("crawl", "--sources", str(sources), "--archive", str(archive), "--no-such-option", "x")
    assert run.returncode == EXIT_USAGE, run.stderr
    assert run.stderr == "postarc crawl: unknown option --no-such-option (postarc crawl -h lists the options)\n"
    assert run.stdout == "" and not archive.exists()


@pytest.mark.parametrize("name", sorted(commands()))
def test_every_command_refuses_an_unknown_option(name: str, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """The console script's own ``main``, in this process: the parser stops before the command runs."""
    monkeypatch.setattr(cmdline, "ScrapyArgumentParser", cmdline.ScrapyArgumentParser)  # main() swaps it
    monkeypatch.setattr(cmdline, "_get_commands_dict", cmdline._get_commands_dict)  # and its command lookup
    monkeypatch.setenv("SCRAPY_SETTINGS_MODULE", "crawler.settings")

    def ran(*_args: object) -> None:
        raise AssertionError("the options were accepted: the command would run")

    monkeypatch.setattr(cmdline, "_run_print_help", ran)  # what execute() calls once the options are parsed
    with pytest.raises(SystemExit) as exit_:
        main([name, "--no-such-option=1", "--sources", "s.yaml"])  # schedule requires --sources
    assert exit_.value.code == EXIT_USAGE
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"postarc {name}: unknown option --no-such-option (postarc {name} -h lists the options)\n")


def test_scrapy_global_options_still_work(tmp_path: Path) -> None:
    sources = write_sources(tmp_path, "sources:\n  - {name: a, url: 'http://127.0.0.1:9/feed', enabled: false}\n")
    archive, pidfile, log = tmp_path / "data", tmp_path / "pid", tmp_path / "crawl.log"
    run = postarc("crawl", "--sources", str(sources), "-s", f"POSTARC_ARCHIVE_DIR={archive}", "--set", "X_Y=1",
                  "--loglevel=INFO", "-L", "DEBUG", "--logfile", str(log), "--pidfile", str(pidfile), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "no source is due" in run.stderr
    assert (archive / ".lock").exists() and pidfile.is_file()  # -s and --pidfile were applied
    assert "DEBUG" in log.read_text(encoding="utf-8")  # -L DEBUG, into --logfile
