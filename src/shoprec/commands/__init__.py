"""Every `shoprec` command, registered without importing the work it does.

A command names its handler as `"module:function"`; `shoprec.cli` imports that module only
when the command runs, so `shoprec --help` and the light commands start at once. A handler
takes the parsed arguments and returns an exit code; the errors it raises on purpose are
`shoprec.errors.ShoprecError`s, which `cli.main` turns into a message and their exit code.
"""

import argparse

Subparsers = argparse._SubParsersAction


def add_command(
    subparsers: Subparsers, name: str, handler: str, *, help: str, description: str | None = None
) -> argparse.ArgumentParser:
    """Register command `name`, run by `handler` ("module:function"), and return its parser."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description or f"{help[0].upper()}{help[1:]}.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler, command_name=name)
    return parser


def add_parameter_option(parser: argparse.ArgumentParser, help: str) -> None:
    """The repeatable `-p NAME=VALUE` option of the commands that run notebooks."""
    parser.add_argument(
        "-p", "--parameter", action="append", default=[], metavar="NAME=VALUE", help=help
    )
