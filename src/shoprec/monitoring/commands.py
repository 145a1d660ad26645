"""`shoprec simulate` and `shoprec monitor`: the handlers behind `shoprec.commands.monitor`."""

import argparse
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoprec.errors import UsageError
from shoprec.runs import project_dir, runs_dir

MONITOR_NOTEBOOK = Path("notebooks") / "05_monitor.ipynb"
MONITOR_EXPERIMENT = "shoprec-monitor"


def _run_id(prefix: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:6]}"


def simulate_command(args: argparse.Namespace) -> int:
    """Simulate shoppers against the environment's live service; print the summary."""
    from shoprec.datasets import load_dataset
    from shoprec.deploy.environments import get_environment
    from shoprec.settings import get_settings
    from shoprec.simulation.live import LiveOptions, check_options, run_live, summary_lines
    from shoprec.simulation.world import World

    options = LiveOptions(args.env, args.users, args.rate, args.duration, args.seed,
                          args.profile, args.drift, args.at)  # fmt: skip
    check_options(options)
    world = World(load_dataset("synthetic", args.profile, seed=args.shop_seed).shop.tastes)
    output = runs_dir() / _run_id("simulate")
    key = get_settings().api_key
    summary = run_live(options, get_environment(args.env).url, world, output,
                       key.get_secret_value() if key else None)  # fmt: skip
    if args.json:
        print(json.dumps({**summary, "output": str(output)}, indent=2))
    else:
        print("\n".join(summary_lines(summary, output)))
    return 0 if summary["failed_requests"] == 0 else 1


def _versions_served(store: Any, environment: str) -> list[str]:
    from sqlalchemy import select

    from shoprec.events import schema

    table = schema.impressions
    query = select(table.c.model_version).where(table.c.environment == environment).distinct()
    with store.engine.connect() as connection:
        return sorted(str(v) for v in connection.execute(query).scalars())


def _registered(versions: list[str]) -> tuple[dict[str, str], dict[str, float]]:
    """Each registered version's fetched artifact and recorded offline nDCG."""
    from shoprec.tracking import registry
    from shoprec.tracking.store import client

    mlflow_client = client()
    model_dirs, ndcg = {}, {}
    for version in versions:
        if not version.isdigit():
            continue
        try:
            found = registry.get_version(mlflow_client, version)
            model_dirs[version] = str(registry.fetch(found))
        except registry.RegistryError as error:
            print(f"shoprec monitor: version {version}: {error}", file=sys.stderr)
            continue
        if "evaluation.ndcg" in found.tags:
            ndcg[version] = float(found.tags["evaluation.ndcg"])
    return model_dirs, ndcg


def _service_requests(environment: str) -> dict[str, list[int]]:
    """(failed, all) `/recommendations` requests per model version, from the environment's live
    service's `/metrics` since its workers started; empty (and said) when it cannot be read."""
    import httpx

    from shoprec.deploy.environments import get_environment
    from shoprec.monitoring.requests import request_counts, scrape

    url = get_environment(environment).url
    try:
        counts = request_counts(scrape(url))
    except httpx.HTTPError as error:
        print(f"shoprec monitor: no error rate: {url}/metrics cannot be read ({error})",
              file=sys.stderr)  # fmt: skip
        return {}
    return {version: list(pair) for version, pair in counts.items()}


def _log_to_mlflow(output: Path, record: dict[str, Any]) -> None:
    """One MLflow run per monitoring report, tagged with the versions it judged."""
    from shoprec.tracking.store import TrackingError, client, experiment_id

    try:
        mlflow_client = client()
        experiment = experiment_id(mlflow_client, MONITOR_EXPERIMENT)
        versions = sorted(record["summary"]["versions"])
        run = mlflow_client.create_run(
            experiment,
            run_name=output.name,
            tags={"shoprec.monitor.environment": record["environment"],
                  "shoprec.monitor.versions": ",".join(versions),
                  "shoprec.monitor.policy_sha256": record["policy"]["sha256"],
                  "shoprec.monitor.breaches": json.dumps(record["breaches"]),
                  "shoprec.monitor.verdict": json.dumps(record["verdict"])},
        )  # fmt: skip
        run_id = run.info.run_id
        for version, row in record["summary"]["versions"].items():
            for name in ("ctr", "cart_rate", "purchase_rate", "fallback_rate"):
                if row[name]["trials"]:
                    mlflow_client.log_metric(run_id, f"v{version}.{name}", row[name]["value"])
            mlflow_client.log_metric(run_id, f"v{version}.impressions", row["impressions"])
        mlflow_client.log_artifacts(run_id, str(output))
        mlflow_client.set_terminated(run_id)
        for version in versions:
            if version.isdigit():
                from shoprec.tracking.store import REGISTERED_MODEL

                mlflow_client.set_model_version_tag(
                    REGISTERED_MODEL, version, "shoprec.monitor.last_run", run_id
                )
    except TrackingError as error:  # the report is kept
        print(f"shoprec monitor: not logged to MLflow ({error}); the report is in {output}",
              file=sys.stderr)  # fmt: skip


def compare_versions(
    store: Any, environment: str, minutes: int, policy: Any, champion: str, challenger: str
) -> Any:
    """The verdict on `challenger` against `champion` from the last `minutes` of events."""
    from datetime import timedelta

    from shoprec.monitoring import metrics
    from shoprec.monitoring.data import read_window
    from shoprec.monitoring.decisions import decide

    window = read_window(store, environment, datetime.now(UTC) - timedelta(minutes=minutes))
    attributed, _ = metrics.attribute(window.impressions, window.feedback, policy.window)
    clicked = set(attributed.loc[attributed["event_type"] == "click", "request_id"])
    arms = []
    for version in (champion, challenger):
        shown = window.impressions[window.impressions["model_version"] == version]
        arms.append((int(shown["request_id"].isin(clicked).sum()), len(shown)))
    return decide(arms[0], arms[1], policy)


def report_lines(record: dict[str, Any]) -> list[str]:
    """What `shoprec monitor` prints of a report (`monitor.json`): each version's lists and CTR,
    the verdict on a challenger, what cannot be judged yet, then the verdict line: "no alerts",
    or one "alert: ..." line per breached threshold."""
    has_feedback = record["summary"]["feedback_events"] > 0
    lines = []
    for version, row in record["summary"]["versions"].items():
        ctr = row["ctr"]
        shown = (
            f"CTR {ctr['value']:.4f} [{ctr['low']:.4f}, {ctr['high']:.4f}]"
            if has_feedback
            else "CTR not judged yet (no feedback)"
        )
        lines.append(f"  version {version}: {row['impressions']} lists, {shown}")
    if record["verdict"]:
        lines.append(f"  challenger {record['challenger']}: {record['verdict']['verdict']} "
                     f"({record['verdict']['reason']})")  # fmt: skip
    lines += [f"  cannot judge yet: {line}" for line in record.get("not_judged", [])]
    lines += [f"alert: {line}" for line in record["breaches"]] or ["no alerts"]
    return lines


def monitor_command(args: argparse.Namespace) -> int:
    """Run 05_monitor into runs/monitor-<id>/, log it, then --check and --auto-rollback."""
    from shoprec.events.store import EventStore
    from shoprec.execution import execute_notebook
    from shoprec.monitoring.decisions import ROLL_BACK
    from shoprec.monitoring.policy import load_monitor_policy

    if args.auto_rollback and args.env != "production":
        raise UsageError(f"--auto-rollback acts on production only, not on {args.env!r}")
    policy = load_monitor_policy()
    store = EventStore()
    try:
        versions = _versions_served(store, args.env)
        model_dirs, ndcg = _registered(versions)
        output = runs_dir() / _run_id("monitor")
        output.mkdir(parents=True)
        execute_notebook(
            project_dir() / MONITOR_NOTEBOOK,
            output / MONITOR_NOTEBOOK.name,
            {"environment": args.env, "events_url": store.description,  # no password
             "model_dirs": model_dirs, "offline_ndcg": ndcg,
             "ground_truth_file": str(args.ground_truth or ""),
             "window_minutes": args.window, "comparison_minutes": args.comparison,
             "bucket_minutes": args.bucket, "policy_file": str(policy.path),
             "service_requests": _service_requests(args.env), "output_dir": str(output)},
        )  # fmt: skip
        record = json.loads((output / "monitor.json").read_text())
        _log_to_mlflow(output, record)
        print(f"monitor report: {output / MONITOR_NOTEBOOK.name}")
        print("\n".join(report_lines(record)))
        code = 1 if args.check and record["breaches"] else 0
        if args.auto_rollback:
            code = max(code, _auto_rollback(store, args, policy, ROLL_BACK))
        return code
    finally:
        store.dispose()


def _auto_rollback(store: Any, args: argparse.Namespace, policy: Any, roll_back: str) -> int:
    """End a losing canary, or roll production back from a version worse than its predecessor."""
    from shoprec.deploy import deployer, state
    from shoprec.monitoring.decisions import PROMOTE

    minutes = args.window + args.comparison
    challenger = deployer.canary_version(args.env)
    current = state.current().get(args.env)
    if challenger is not None and current is not None:
        champion, candidate = current.version, str(challenger.version)
    else:
        served = state.served_versions(args.env)
        if len(served) < 2:
            print("auto-rollback: production has no previous version to compare with")
            return 0
        champion, candidate = served[-2], served[-1]
    decision = compare_versions(store, args.env, minutes, policy, champion, candidate)
    if decision.verdict != roll_back:
        hint = (
            " (complete it: shoprec promote --env production)"
            if (challenger is not None and decision.verdict == PROMOTE)
            else ""
        )
        print(f"auto-rollback: version {candidate} stays: {decision.verdict}{hint}; "
              f"{decision.reason}")  # fmt: skip
        return 0
    reason = f"monitor: version {candidate} worse than version {champion}: {decision.reason}"
    if challenger is not None:
        deployment, ended = deployer.end_canary(args.env, reason)
        print(f"auto-rollback: canary version {ended} ended; every user gets version "
              f"{deployment.version}; {reason}")  # fmt: skip
    else:
        deployment, replaced = deployer.rollback(args.env, reason=reason)
        print(f"auto-rollback: production rolled back from version {replaced} to version "
              f"{deployment.version}; {reason}")  # fmt: skip
    return 0
