"""Commands on the event store: `events summary`."""

from shoprec.commands import Subparsers, add_command


def register(subparsers: Subparsers) -> None:
    """Add `events summary`."""
    parser = subparsers.add_parser(
        "events", help="impressions and feedback events", description="The event store."
    )
    commands = parser.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    summary = add_command(
        commands,
        "summary",
        "shoprec.events.summary:summary_command",
        help="impressions and feedback per environment and model version",
    )
    summary.set_defaults(command_name="events summary")
    summary.add_argument("--env", metavar="NAME", help="only this environment (default: all)")
    summary.add_argument("--json", action="store_true", help="print JSON")
