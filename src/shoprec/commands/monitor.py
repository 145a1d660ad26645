"""Commands of the online loop: `simulate` (shoppers against a live service) and `monitor`."""

from pathlib import Path

from shoprec.commands import Subparsers, add_command
from shoprec.commands.deploy import add_no_wait_option
from shoprec.deploy.environments import ENVIRONMENTS

DRIFTS = ("taste-shift", "new-items", "popularity-shock")  # as shoprec.simulation.world


def register(subparsers: Subparsers) -> None:
    """Add `simulate`, `monitor` and `promote`."""
    envs = list(ENVIRONMENTS)
    parser = add_command(
        subparsers,
        "promote",
        "shoprec.deploy.commands:promote_command",
        help="complete a canary: its challenger serves every user",
    )
    parser.add_argument("--env", default="production", choices=envs)
    add_no_wait_option(parser)
    parser = add_command(
        subparsers,
        "simulate",
        "shoprec.monitoring.commands:simulate_command",
        help="simulated shoppers with known tastes against a live local service",
        description="Simulated shoppers from the synthetic shop ask the environment's service "
        "(127.0.0.1) for lists and send their clicks, add-to-carts and purchases to POST "
        "/events. Bounded in time and requests; the ground truth (each list's true CTR by "
        "model version) goes to runs/simulate-<id>/.",
    )
    parser.add_argument("--env", default="production", choices=envs)
    parser.add_argument("--users", type=int, default=1000, help="distinct shoppers (default 1000)")
    parser.add_argument("--rate", type=float, default=20.0, help="visits per second (default 20)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="default", help="the shop's size: smoke | default")
    parser.add_argument(
        "--shop-seed", type=int, default=42, help="the seed the served model's shop was made with"
    )
    parser.add_argument("--drift", choices=DRIFTS, help="change the world mid-run")
    parser.add_argument("--at", type=float, metavar="SECONDS", help="when the drift happens")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")

    parser = add_command(
        subparsers,
        "monitor",
        "shoprec.monitoring.commands:monitor_command",
        help="online metrics per model version: run 05_monitor into runs/monitor-<id>/",
        description="Run notebooks/05_monitor.ipynb on the environment's events, log it to "
        "MLflow against the model versions judged. --check exits 1 naming each breached "
        "metric; --auto-rollback rolls production back when its version is significantly "
        "worse than its predecessor (policy/monitor-policy.toml).",
    )
    parser.add_argument("--env", default="production", choices=envs)
    parser.add_argument("--window", type=int, default=30, metavar="MINUTES", help="default 30")
    parser.add_argument("--comparison", type=int, default=30, metavar="MINUTES", help="default 30")
    parser.add_argument("--bucket", type=int, default=5, metavar="MINUTES", help="default 5")
    parser.add_argument("--ground-truth", type=Path, metavar="CSV", help="a simulator's truth")
    parser.add_argument("--check", action="store_true", help="exit 1 on any breached threshold")
    parser.add_argument(
        "--auto-rollback", action="store_true", help="roll production back on a losing version"
    )
