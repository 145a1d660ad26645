"""`shoprec report`: what a change does to the model, registered without importing its work."""

from pathlib import Path

from shoprec.commands import Subparsers, add_command, add_parameter_option


def register(subparsers: Subparsers) -> None:
    """Add `report`."""
    parser = add_command(
        subparsers,
        "report",
        "shoprec.report.command:report_command",
        help="run base and head through the pipeline and report what head does to the model",
        description="Run base and head, each with its own notebooks, package and lock file from\n"
        "its own git worktree, through the pipeline on the same data, seeds and profile, and\n"
        "write report.md, report.json and plots: every metric with a 95% paired bootstrap\n"
        "interval for head - base and a verdict, by segment too; what changed; whether head\n"
        "passes the deploy gate. Base results are cached by commit, data and lock file.",
    )
    parser.add_argument("--base", required=True, metavar="REF", help="the commit to compare with")
    parser.add_argument(
        "--head",
        metavar="REF",
        help="the commit to report on (default: the commit checked out; uncommitted changes are "
        "not part of it)",
    )
    parser.add_argument("--profile", default="default", help="smoke | default (default: default)")
    parser.add_argument(
        "--dataset", default="synthetic", help="see the README (default: synthetic)"
    )
    add_parameter_option(parser, "give both sides this notebook parameter (repeatable)")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where to write the report (default: reports/<base>..<head>/)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 when head fails its deploy gate or any metric at k is worse",
    )
    parser.add_argument(
        "--cache-key",
        action="store_true",
        help="print the cache key of base's results and exit (CI restores the cache by it)",
    )
