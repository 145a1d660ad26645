"""The monitor demo's timeline on real local services, in a scratch project.

Every step is the command a person would type, run as a child process against a throw-away
project (`SHOPREC_PROJECT_DIR` in `runs/monitor-demo/project/`, the repository's policies and
notebooks, its own tracking store and event store, free ports): `shoprec pipeline` (smoke) ->
`shoprec deploy` through test, staging and production -> `shoprec simulate` (shoppers over
HTTP on 127.0.0.1, a taste shift mid-run) -> `shoprec monitor --check` (drift and the CTR drop)
-> `shoprec pipeline --dataset events` (production's recipe, its algorithm and hyperparameters as
`-p`, fit on the events) -> `shoprec deploy` through the gates (judged against production's
recipe refit on the same training split, as production was trained on another dataset)
-> `shoprec simulate` again (the same shoppers, still shifted) -> CTR measured from the event
store, phase by phase.
Services started here are stopped before it returns.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shoprec.errors import ShoprecError

PHASE_SECONDS = 62  # traffic before the shift and after it (>= 1 minute: the monitor's
# windows are whole minutes, and it compares the last minute with the one before)
RETRAINED_SECONDS = 40  # traffic after the retrain's deploy
RATE = 40.0  # visits per second; each is a GET and a POST on 127.0.0.1
SEED = 11  # the shoppers and the taste shift (the same seed gives the same shifted world)
SHOP = ("smoke", 42)  # the synthetic shop the pipeline trains on: profile, seed
# The retrain reads every shopper's events: the smoke profile would sample 100 of 200 users.
RETRAIN_PROFILE = "default"
COMMAND_TIMEOUT = 600.0  # seconds, for any one command


class TimelineError(ShoprecError):
    """A step of the timeline did not do what it must; the message names the command."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scratch_environment(root: Path, repository: Path) -> dict[str, str]:
    """A fresh project at `root` (the repository's policies copied, its notebooks and lock file
    linked), and the environment variables that point the command line at it."""
    from shoprec.deploy.environments import ENVIRONMENTS

    if root.exists():
        shutil.rmtree(root)
    (root / ".shoprec").mkdir(parents=True)
    shutil.copytree(repository / "policy", root / "policy")
    for name in ("notebooks", "requirements.lock"):
        if (repository / name).exists():
            (root / name).symlink_to((repository / name).resolve())
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("SHOPREC_EVENTS_URL", "MLFLOW_TRACKING_URI")
    }
    environment.update(
        SHOPREC_PROJECT_DIR=str(root),
        MLFLOW_TRACKING_URI=f"sqlite:///{root / '.shoprec' / 'mlflow.db'}",
        SHOPREC_WORKERS="1",
        **{env.port_variable: str(_free_port()) for env in ENVIRONMENTS.values()},
    )
    return environment


def shoprec_command(
    environment: dict[str, str], log: Path
) -> Callable[..., subprocess.CompletedProcess]:
    """Run `shoprec ARGS` in a child process of the scratch project; every call is logged."""

    def run(*args: str, expect: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "shoprec.cli", *args],
            capture_output=True,
            text=True,
            env=environment,
            cwd=environment["SHOPREC_PROJECT_DIR"],
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        seconds = time.monotonic() - started
        with log.open("a") as stream:
            stream.write(f"$ shoprec {' '.join(args)}  # exit {done.returncode}, {seconds:.1f} s\n")
            stream.write(done.stdout + done.stderr + "\n")
        print(f"  shoprec {' '.join(args)}: exit {done.returncode} ({seconds:.1f} s)",
              file=sys.stderr)  # fmt: skip
        if done.returncode not in expect:
            raise TimelineError(
                f"shoprec {' '.join(args)} exited {done.returncode} (expected {expect}): "
                f"{done.stderr.strip()[-2000:]}"
            )
        return done

    return run


def _latest_run(root: Path) -> tuple[str, dict[str, Any]]:
    run_dir = (root / "runs" / "latest").resolve()
    evaluation = json.loads((run_dir / "04_evaluate" / "evaluation.json").read_text())
    return run_dir.name, evaluation


def production_recipe(root: Path, run_id: str) -> tuple[str, dict[str, Any]]:
    """The algorithm and every hyperparameter of the model run `run_id` trained (its model.json):
    what a retrain fits again on new data."""
    from shoprec.artifact import read_metadata
    from shoprec.runs import MODEL_SUBDIR

    record = read_metadata(root / "runs" / run_id / MODEL_SUBDIR)
    return record["algorithm"], record["params"]


def _deploy(shoprec: Callable[..., Any], run_id: str) -> None:
    shoprec("deploy", "--env", "test", "--run", run_id)
    shoprec("deploy", "--env", "staging", "--run", run_id)
    shoprec("deploy", "--env", "production", "--run", run_id, "--approve")


def _simulate(shoprec: Callable[..., Any], seconds: float, at: float) -> dict[str, Any]:
    """Shoppers over HTTP for `seconds`; their tastes shift `at` seconds in (0: from the start:
    the same seed shifts them the same way)."""
    done = shoprec("simulate", "--env", "production", "--users", "200", "--rate", f"{RATE:g}",
                   "--duration", f"{seconds:g}", "--profile", SHOP[0], "--shop-seed", str(SHOP[1]),
                   "--seed", str(SEED), "--drift", "taste-shift", "--at", f"{at:g}",
                   "--json")  # fmt: skip
    return json.loads(done.stdout)


def measured_ctr(root: Path, start: datetime, end: datetime) -> dict[str, Any]:
    """From the scratch project's event store: lists production served in [start, end), the
    share with at least one attributed click, and its interval."""
    from shoprec.events.store import EventStore
    from shoprec.monitoring import metrics
    from shoprec.monitoring.data import read_window
    from shoprec.monitoring.policy import load_monitor_policy
    from shoprec.monitoring.stats import rate_interval

    policy = load_monitor_policy(root / "policy" / "monitor-policy.toml")
    store = EventStore(f"sqlite:///{root / '.shoprec' / 'events.db'}", upgrade=False)
    try:
        window = read_window(store, "production", start, end, end + policy.window)
    finally:
        store.dispose()
    attributed, _ = metrics.attribute(window.impressions, window.feedback, policy.window)
    clicked = set(attributed.loc[attributed["event_type"] == "click", "request_id"])
    lists = len(window.impressions)
    hits = int(window.impressions["request_id"].isin(clicked).sum())
    rate = rate_interval(hits, lists)
    versions = sorted(str(v) for v in window.impressions["model_version"].unique())
    return {"lists": lists, "ctr": rate.value, "interval": [rate.low, rate.high],
            "versions": versions}  # fmt: skip


def _truth(output: str, start: datetime, end: datetime) -> float:
    import pandas as pd

    truth = pd.read_csv(Path(output) / "ground_truth.csv")
    served = pd.to_datetime(truth["served_at"], utc=True)
    return float(truth.loc[(served >= start) & (served < end), "expected_ctr"].mean())


def live_timeline(root: Path, repository: Path) -> dict[str, Any]:
    """Run the timeline in a scratch project at `root`; what was detected, when, and the CTRs."""
    from shoprec.deploy.environments import ENVIRONMENTS

    environment = scratch_environment(root, repository)
    log = root / "timeline.log"
    shoprec = shoprec_command(environment, log)
    steps: dict[str, float] = {}
    started = time.monotonic()
    try:
        shoprec("pipeline", "--profile", SHOP[0], "--quiet")
        first_run, _ = _latest_run(root)
        _deploy(shoprec, first_run)
        steps["pipeline and deploy"] = time.monotonic() - started

        # Shoppers over HTTP; their tastes shift after PHASE_SECONDS.
        before_start = datetime.now(UTC)
        shift_at = before_start + timedelta(seconds=PHASE_SECONDS)
        traffic = _simulate(shoprec, 2 * PHASE_SECONDS, PHASE_SECONDS)
        after_end = datetime.now(UTC)
        steps["traffic and taste shift"] = time.monotonic() - started - sum(steps.values())

        # The monitor judges the last minute against the minute before it.
        checked = shoprec("monitor", "--env", "production", "--window", "1", "--comparison",
                          "1", "--check", expect=(0, 1))  # fmt: skip
        lines = checked.stdout.splitlines()
        breaches = [line.removeprefix("alert: ") for line in lines if line.startswith("alert: ")]
        (report,) = sorted((root / "runs").glob("monitor-*/monitor.json"))
        monitored = json.loads(report.read_text())
        steps["monitor"] = time.monotonic() - started - sum(steps.values())

        # Retrain production's recipe on what shoppers did, and deploy it through the gates.
        algorithm, hyperparameters = production_recipe(root, first_run)
        shoprec("pipeline", "--dataset", "events", "--profile", RETRAIN_PROFILE, "--quiet",
                "-p", f"algorithm={algorithm}",
                "-p", f"hyperparameters={json.dumps(hyperparameters)}")  # fmt: skip
        retrained_run, evaluation = _latest_run(root)
        deployed = bool(evaluation.get("passed"))
        if deployed:  # else the gates refuse it, and the report says why
            _deploy(shoprec, retrained_run)
        steps["retrain and deploy"] = time.monotonic() - started - sum(steps.values())

        retrained_start = datetime.now(UTC)
        recovered = _simulate(shoprec, RETRAINED_SECONDS, 0)  # the same shoppers, still shifted
        retrained_end = datetime.now(UTC)
        steps["traffic after the retrain"] = time.monotonic() - started - sum(steps.values())
    finally:
        shoprec("stop", expect=(0, 1, 2))

    phases = {
        "before": measured_ctr(root, before_start, shift_at),
        "after_shift": measured_ctr(root, shift_at, after_end),
        "after_retrain": measured_ctr(root, retrained_start, retrained_end),
    }
    truth = {
        "before": _truth(traffic["output"], before_start, shift_at),
        "after_shift": _truth(traffic["output"], shift_at, after_end),
        "after_retrain": _truth(recovered["output"], retrained_start, retrained_end),
    }
    drifts = [line for line in breaches if line.split()[0] in ("taste_drift", "item_drift_js")]
    drops = [line for line in breaches if line.split()[0] == "ctr_drop"]
    regression = evaluation["checks"][-1]
    drift = monitored["summary"]["drift"]
    return {
        "drift_detected": bool(drifts),
        "ctr_drop_detected": bool(drops),
        # the monitor ran once, after the shifted minute: every list served since the shift
        "impressions_to_detection": phases["after_shift"]["lists"] if drifts and drops else None,
        "detected": drifts + drops,
        "breaches": breaches,
        "item_js_at_detection": drift.get("item_js"),
        "taste_agreement_at_detection": drift.get("taste_agreement"),
        "taste_agreement_before": drift.get("taste_agreement_before"),
        "ctr_before": phases["before"]["ctr"],
        "ctr_after_shift": phases["after_shift"]["ctr"],
        "ctr_after_retrain": phases["after_retrain"]["ctr"],
        "true_ctr": truth,
        "phases": phases,
        "retrain": {
            "run": retrained_run,
            "recipe": {"algorithm": algorithm, "params": hyperparameters},
            "production_before": first_run,
            "evaluation": evaluation["status"],
            "basis": evaluation["production"].get("basis"),
            "basis_reason": evaluation["production"].get("basis_reason"),
            "check": regression["check"],
            "value": regression["value"],
            "threshold": regression["threshold"],
            "deployed": deployed,
        },
        "requests": {"shift": traffic["requests"], "after_retrain": recovered["requests"],
                     "failed": traffic["failed_requests"] + recovered["failed_requests"]},
        "steps_seconds": {name: round(seconds, 1) for name, seconds in steps.items()},
        "log": str(log),
        "services": {env.name: f"http://127.0.0.1:{environment[env.port_variable]}"
                     for env in ENVIRONMENTS.values()},
    }  # fmt: skip
