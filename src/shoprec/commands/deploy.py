"""Commands that serve models: deploy, rollback, status, history, stop, start and serve."""

import argparse

from shoprec.commands import Subparsers, add_command
from shoprec.deploy.environments import ENVIRONMENTS

HANDLERS = "shoprec.deploy.commands"


def add_no_wait_option(parser: argparse.ArgumentParser) -> None:
    """`--no-wait`: fail at once when another command is changing the environment."""
    parser.add_argument(
        "--no-wait",
        action="store_true",
        help="fail at once (exit 1) if another command is changing the environment, "
        "instead of waiting for it",
    )


def register(subparsers: Subparsers) -> None:
    """Add the deployment commands and `serve`."""
    envs = list(ENVIRONMENTS)
    parser = add_command(
        subparsers,
        "deploy",
        f"{HANDLERS}:deploy_command",
        help="serve a run in an environment",
        description="Serve a run in test, staging or production, if the promotion gates allow.",
    )
    parser.add_argument("--env", required=True, choices=envs)
    parser.add_argument("--run", required=True, metavar="RUN_ID", help="run id or 'latest'")
    parser.add_argument("--approve", action="store_true", help="approve a production deploy")
    parser.add_argument(
        "--canary", type=float, metavar="SHARE", help="serve it to this share of users (0-1) only"
    )
    add_no_wait_option(parser)

    parser = add_command(
        subparsers,
        "rollback",
        f"{HANDLERS}:rollback_command",
        help="serve the version an environment served before its current one",
    )
    parser.add_argument("--env", required=True, choices=envs)
    add_no_wait_option(parser)

    parser = add_command(
        subparsers, "status", f"{HANDLERS}:status_command", help="show what each environment serves"
    )
    parser.add_argument(
        "--registry", action="store_true", help="also check each environment against its alias"
    )
    for name, help in (
        ("history", "list deployments and rollbacks, oldest first"),
        ("stop", "stop local services"),
        ("start", "serve what the registry's aliases name, repairing an interrupted command"),
    ):
        parser = add_command(subparsers, name, f"{HANDLERS}:{name}_command", help=help)
        parser.add_argument("--env", choices=envs, help="only this environment (default: all)")
        if name != "history":
            add_no_wait_option(parser)

    parser = add_command(
        subparsers,
        "serve",
        "shoprec.service:serve",
        help="serve a model over HTTP",
        description="Serve recommendations from a model artifact over HTTP.",
    )
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR|URI",
        help="model artifact directory, or registry URI models:/shoprec@<alias> (or /<version>)",
    )
    parser.add_argument("--run-id", metavar="ID", help="run id to report in responses")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="default 8000")
    parser.add_argument("--environment", default="local", metavar="NAME", help="default local")
