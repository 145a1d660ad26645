"""Impressions and feedback events: their store, the impression logger, `POST /events`, and
the `shoprec events` command."""

import argparse
import sys


def _summary(args: argparse.Namespace) -> int:
    from shoprec.events.errors import EventStoreError
    from shoprec.events.summary import summary_command
    from shoprec.settings import get_settings

    try:
        get_settings()
        return summary_command(args)
    except EventStoreError as error:
        print(f"shoprec events summary: {error}", file=sys.stderr)
        return error.exit_code


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `events` command (`events summary`)."""
    parser = subparsers.add_parser(
        "events", help="impressions and feedback events", description="The event store."
    )
    commands = parser.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    summary = commands.add_parser(
        "summary",
        help="impressions and feedback per environment and model version",
        description="Impressions and feedback events per environment and model version.",
    )
    summary.add_argument("--env", metavar="NAME", help="only this environment (default: all)")
    summary.add_argument("--json", action="store_true", help="print JSON")
    summary.set_defaults(func=_summary)


__all__ = ["register"]
