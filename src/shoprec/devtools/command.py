"""One command, two entry points: a `shoprec` subcommand and `python -m shoprec.devtools.X`."""

import argparse
from collections.abc import Callable, Sequence

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def add_subcommand(
    subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]",
    name: str,
    *,
    help: str,
    description: str | None,
    add_arguments: AddArguments,
    run: Run,
) -> None:
    """Register `name` on the project's command line."""
    parser = subparsers.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


def run_standalone(
    prog: str,
    argv: Sequence[str] | None,
    *,
    description: str | None,
    add_arguments: AddArguments,
    run: Run,
) -> int:
    """Parse `argv` for a module run as a script and return the command's exit code."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
