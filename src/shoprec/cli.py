"""The `shoprec` command line: every command registered by `shoprec.commands`, run lazily.

Registering imports nothing heavy; a command's handler module is imported only when it runs.
Errors raised on purpose (`ShoprecError`) become one message on stderr and their exit code;
see `shoprec.errors` for the codes.
"""

import argparse
import importlib
import sys

from shoprec import __version__
from shoprec.commands import deploy, develop, events, monitor, pipeline, report
from shoprec.errors import EXIT_INTERRUPTED, ShoprecError

COMMAND_GROUPS = (pipeline, report, deploy, events, monitor, develop)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command registered."""
    parser = argparse.ArgumentParser(
        prog="shoprec", description="Notebook-first recommendations for an online shop."
    )
    parser.add_argument("--version", action="version", version=f"shoprec {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command given on the command line and return its exit code."""
    args = build_parser().parse_args(argv)
    module, _, function = args.handler.partition(":")
    try:
        handler = getattr(importlib.import_module(module), function)
        return handler(args)
    except ShoprecError as error:
        print(f"shoprec {args.command_name}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"shoprec {args.command_name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
