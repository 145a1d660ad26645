"""The `shoprec` command line: one subcommand per job, each registered by its own module."""

import argparse
import sys

from shoprec import __version__, benchmark, deploy, pipeline, service
from shoprec.devtools import extract, nbdiff_html, nblint
from shoprec.tracking import commands as tracking

COMMAND_MODULES = (pipeline, tracking, service, deploy, benchmark, extract, nblint, nbdiff_html)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="shoprec", description=__doc__)
    parser.add_argument("--version", action="version", version=f"shoprec {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command given on the command line and return its exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
