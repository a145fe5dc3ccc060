"""The ``postarc`` console script: Scrapy's command line with postarc's project settings.

It works from any directory (no ``scrapy.cfg`` needed) and shares one implementation with
``scrapy <command>`` run inside the project. It offers postarc's own commands only, those of
the package ``COMMANDS_MODULE`` names; Scrapy's developer tools (``bench``, ``genspider``,
``shell``…) stay ``scrapy <command>``.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

from crawler.exitcodes import EXIT_USAGE

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from scrapy.commands import ScrapyCommand


def commands() -> dict[str, ScrapyCommand]:
    """postarc's commands by the name typed (``export-wacz``), one per module of the package."""
    import inspect

    from scrapy.commands import ScrapyCommand
    from scrapy.utils.misc import walk_modules_iter
    from scrapy.utils.project import get_project_settings

    found = {}
    for module in walk_modules_iter(get_project_settings()["COMMANDS_MODULE"]):
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, ScrapyCommand) and obj.__module__ == module.__name__:
                found[module.__name__.rsplit(".", 1)[-1].replace("_", "-")] = obj()
    return dict(sorted(found.items()))


def usage(cmds: dict[str, ScrapyCommand]) -> str:
    from importlib.metadata import version

    width = max(map(len, cmds))
    lines = [f"postarc {version('postarc')}", "", "Usage: postarc <command> [options] [args]", "", "Commands:"]
    lines += [f"  {name:<{width}}  {cmd.short_desc()}" for name, cmd in cmds.items()]
    lines += ["", 'Run "postarc <command> -h" for a command\'s options.']
    return "\n".join(lines)


def _postarc_parser() -> None:
    """Scrapy's command-line parser, saying ``postarc`` and refusing options it does not know.

    ``scrapy.cmdline.execute`` (Scrapy 2.19) hard-codes ``scrapy export_wacz`` in each usage line,
    and parses with ``parse_known_args``, so a mistyped option (``--no-such-option``, ``--source``)
    was silently taken as an argument. It offers no hook for either, so its parser class is
    swapped for one that rewrites the usage and stops at the first unknown option, in one line.
    """
    from scrapy import cmdline

    class Parser(cmdline.ScrapyArgumentParser):
        def __init__(self, *args, usage: str | None = None, **kwargs) -> None:
            self.command = "postarc"
            if usage and usage.startswith("scrapy "):
                _, name, rest = usage.split(" ", 2)
                self.command = f"postarc {name.replace('_', '-')}"
                usage = f"{self.command} {rest}"
            super().__init__(*args, prog="postarc", usage=usage, **kwargs)

        def parse_known_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                             namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
            opts, rest = super().parse_known_args(args, namespace)
            end = rest.index("--") if "--" in rest else len(rest)  # after "--", "-x" is an argument
            unknown = [a for a in rest[:end] if a.startswith("-") and a != "-"]
            if unknown:
                option = unknown[0].split("=", 1)[0]
                print(f"{self.command}: unknown option {option} ({self.command} -h lists the options)", file=sys.stderr)
                sys.exit(EXIT_USAGE)
            return opts, rest[:end] + rest[end + 1:]

    cmdline.ScrapyArgumentParser = Parser


def _look_up_in(module: str) -> None:
    """Have ``scrapy.cmdline.execute`` look the command up among ``module``'s commands alone.

    To find the command typed, ``execute`` (Scrapy 2.19, ``_get_commands_dict``) imports every
    module of ``COMMANDS_MODULE`` (postarc's other commands: trafilatura, cdxj-indexer,
    cryptography, ruamel.yaml…) and all 14 of Scrapy's own, and scans every installed package's
    entry points; Scrapy's part alone is 5.7 % of a start-up's instructions (40–50 ms). ``main``
    has found the command's module already and says unknown names itself, so the lookup is given
    that module only (as in Scrapy's, project-only commands are dropped outside a project).
    Scrapy offers no hook for this either.
    """
    from scrapy import cmdline

    cmdline._get_commands_dict = lambda settings, inproject: cmdline._get_commands_from_module(module, inproject)


def _import_tls_without_stack_walk() -> None:
    """Import Scrapy's TLS modules with ``inspect.stack`` cut down to the one frame they read.

    At import, ``scrapy.utils.deprecate.create_deprecated_class`` (Scrapy 2.19, three aliases in
    ``scrapy.core.downloader.tls`` and ``contextfactory``) calls ``inspect.stack()`` for its
    caller's module. That builds every frame of the import stack and, for each, scans all of
    ``sys.modules`` (CPython issue 92041): about 0.1–0.2 s of every crawl's start-up, for
    ``stack()[1][0]``, the caller's frame, which this gives directly.
    """
    import inspect

    real = inspect.stack
    inspect.stack = lambda context=1: [None, (sys._getframe(2),)]  # type: ignore[assignment,misc]
    try:
        import scrapy.core.downloader.contextfactory  # noqa: F401
    finally:
        inspect.stack = real


def command_module(package: str, name: str) -> str | None:
    """The module of the command typed (``export-wacz``: ``PACKAGE.export_wacz``), found without importing it."""
    from importlib.util import find_spec

    if not re.fullmatch(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*", name):
        return None
    module = f"{package}.{name.replace('-', '_')}"
    return module if find_spec(module) else None


def main(argv: list[str] | None = None) -> None:
    # Imported late, not at the top: the worker processes of crawler.workers import this
    # module again (it is their parent's __main__) and have no use for Scrapy (~25 MB, 0.3 s each).
    from scrapy.cmdline import execute
    from scrapy.utils.project import get_project_settings

    _import_tls_without_stack_walk()
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "crawler.settings")
    at = next((i for i, a in enumerate(args) if not a.startswith("-")), None)
    if at is None:
        print(usage(commands()))
        sys.exit(0 if not args or args[0] in ("-h", "--help") else EXIT_USAGE)
    name = args[at]
    settings = get_project_settings()
    module = command_module(settings["COMMANDS_MODULE"], name)
    if module is None:
        print(f"postarc: unknown command {name!r} (Scrapy's own tools run as `scrapy {name}` in the "
              f"project directory)\n\n{usage(commands())}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    args[at] = name.replace("-", "_")  # export-wacz -> the export_wacz command module
    _postarc_parser()
    _look_up_in(module)
    execute(["postarc", *args], settings)


if __name__ == "__main__":
    main()
