"""Commands that run and inspect experiments: `pipeline`, `reproduce` and `runs`."""

import argparse
from pathlib import Path

from shoprec.commands import Subparsers, add_command, add_parameter_option


def register(subparsers: Subparsers) -> None:
    """Add `pipeline`, `reproduce`, `runs list`, `runs sync` and `runs compare`."""
    parser = add_command(
        subparsers,
        "pipeline",
        "shoprec.pipeline.command:pipeline_command",
        help="run the notebooks in order into runs/<run-id>/",
    )
    parser.add_argument(
        "--profile", help="smoke | default (default: default, or the --rerun run's)"
    )
    parser.add_argument(
        "--dataset", help="see the README (default: synthetic, or the --rerun run's)"
    )
    add_parameter_option(
        parser, "override a notebook parameter (repeatable); values are parsed as JSON if they can"
    )
    parser.add_argument(
        "--engine",
        choices=("local", "spark"),
        action=_EngineParameter,
        help="run the notebooks on this engine: the same as -p engine=NAME (default: local; "
        "spark: Apache Spark, its master from -p spark_master=URL or SHOPREC_SPARK_MASTER)",
    )
    parser.add_argument(
        "--rerun",
        metavar="RUN_ID",
        help="a new run with the profile, dataset and parameters RUN_ID recorded (then -p): to "
        "evaluate a recipe again, e.g. under today's deploy policy; unlike reproduce, it ships "
        "as any run does",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the outcome")

    parser = add_command(
        subparsers,
        "reproduce",
        "shoprec.experiments:reproduce_command",
        help="re-execute a run and check the result is identical",
        description="Re-execute a run from its recorded parameters into a new run and compare "
        "parameter by parameter and metric by metric; exit 1 on any difference. A reproduction "
        "checks and never ships: it registers no model version and leaves runs/latest where it "
        "was; `shoprec runs list` shows it as a reproduction.",
    )
    parser.add_argument("run_id", metavar="RUN_ID", help="run id or 'latest'")
    add_parameter_option(parser, "change a parameter for the re-execution (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="print only the outcome")

    runs = subparsers.add_parser("runs", help="list, log and compare pipeline runs")
    commands = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")
    parser = add_command(
        commands,
        "list",
        "shoprec.experiments:list_command",
        help="the runs, newest first: parameters, headline metrics, verdict, version, serving",
        description="One line per run in runs/, newest first: id, start time, profile, dataset, "
        "algorithm, the candidate's nDCG, precision, recall and MAP at k, the evaluation's "
        "verdict, the registered model version and the environments serving it (registry "
        "aliases), and whether the run reproduces another.",
    )
    parser.set_defaults(command_name="runs list")
    parser.add_argument("--json", action="store_true", help="a JSON list, for machines")
    parser.add_argument(
        "--limit", type=int, default=20, metavar="N", help="the newest N runs (0: all; default 20)"
    )

    parser = add_command(
        commands,
        "sync",
        "shoprec.experiments:sync_command",
        help="log runs to the tracking store (MLflow) that are not logged yet",
        description="Log runs/<id>/ to the tracking store ($MLFLOW_TRACKING_URI, else the "
        "project's .shoprec/mlflow.db); runs already logged there are skipped.",
    )
    parser.set_defaults(command_name="runs sync")
    parser.add_argument("run_id", nargs="?", metavar="RUN_ID", help="run id or 'latest'")
    parser.add_argument("--all", action="store_true", help="every run under runs/")

    parser = add_command(
        commands,
        "compare",
        "shoprec.experiments:compare_command",
        help="what changed between two runs: headline metrics, parameters and notebooks",
    )
    parser.set_defaults(command_name="runs compare")
    parser.add_argument("run_a", metavar="RUN_A")
    parser.add_argument("run_b", metavar="RUN_B")
    parser.add_argument("--full", action="store_true", help="every metric and notebook diff")
    parser.add_argument(
        "--html", type=Path, metavar="OUT_DIR", help="also write a browsable diff page per notebook"
    )


class _EngineParameter(argparse.Action):
    """`--engine NAME` as `-p engine=NAME`: planned and recorded like any notebook parameter."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        setattr(namespace, self.dest, value)
        namespace.parameter = [*getattr(namespace, "parameter", []), f"engine={value}"]
