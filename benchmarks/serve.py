"""`make benchmark-serve`: shoprec's production service against `mlflow models serve`.

Both serve the same registered model (`models:/shoprec@production`), one after the other on
this machine, under the same load generator (wrk, 127.0.0.1 only, bounded in time):

1. throughput: wrk, 1 thread, 16 connections, random known users, k=10 (shoprec with
   impression logging on; MLflow with the equivalent POST /invocations);
2. latency at a fixed 500 requests/s for 30 s (open loop), with errors and dropped impressions;
3. impressions: the store holds one record per successful /recommendations answer, each under
   the version that served it;
4. a deploy and a rollback of production under a steady 200 requests/s: failed requests
   (in the project itself when production has a previous version, else in a scratch copy).

Writes docs/benchmarks/serve.md and .json.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.report import DOCS, Benchmark
from shoprec.service.loadgen import LoadResult, fixed_rate, wrk

MLFLOW_START_TIMEOUT = 600.0
USERS = 1_000
MLFLOW_BODY = '{"dataframe_split": {"columns": ["user_id", "k"], "data": [[%s, 10]]}}'


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _scrape(url: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(samples: dict, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all(dict(sample_labels).get(k) == v for k, v in labels.items())
    )


def _log_counter(samples: dict, outcome: str) -> float:
    return _total(samples, "shoprec_impression_records_total", outcome=outcome)


def _stored(environment: str) -> dict[str, int]:
    from shoprec.events.store import EventStore

    store = EventStore()
    try:
        return {row.model_version: row.impressions for row in store.summary(environment)}
    finally:
        store.dispose()


def _wait_for_flush(url: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        samples = _scrape(url)
        settled = sum(_log_counter(samples, name) for name in ("written", "spooled", "dropped"))
        if settled >= _log_counter(samples, "queued") or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


@contextlib.contextmanager
def _mlflow_server(uri: str, log: Path) -> Iterator[str]:
    port = _free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", uri, "-h", "127.0.0.1",
               "-p", str(port), "--env-manager", "local"]  # fmt: skip
    from shoprec.tracking.store import tracking_uri

    with log.open("w") as stream:
        process = subprocess.Popen(
            command,
            stdout=stream,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "MLFLOW_TRACKING_URI": tracking_uri(),
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            },
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + MLFLOW_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow models serve exited; log {log}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"mlflow models serve did not answer /ping; log {log}")
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


class SteadyLoad:
    """A fixed-rate load in a background thread, counting answers by model version."""

    def __init__(self, url: str, paths: list[str], rate: float) -> None:
        self.versions: Counter[str] = Counter()
        self.stop = threading.Event()
        self.result: LoadResult | None = None

        def on_response(status: int, headers: dict[str, str], body: bytes) -> None:
            if status == 200:
                self.versions[headers.get("x-model-version", "?")] += 1

        def run() -> None:
            self.result = fixed_rate(url, paths, rate=rate, seconds=3600, connections=16,
                                     on_response=on_response, stop=self.stop)  # fmt: skip

        self.thread = threading.Thread(target=run, daemon=True)

    def __enter__(self) -> "SteadyLoad":
        self.thread.start()
        time.sleep(1.0)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(1.0)
        self.stop.set()
        self.thread.join(60)


def _timed(action: Any) -> tuple[float, str]:
    started = time.monotonic()
    outcome = action()
    return time.monotonic() - started, outcome


def _deploy_and_rollback(paths: list[str], rate: float, run_id: str) -> dict[str, Any]:
    """Roll production back and deploy `run_id` again, under load; failures and timings."""
    from shoprec.deploy import deployer
    from shoprec.deploy.environments import get_environment

    env = get_environment("production")
    with SteadyLoad(env.url, paths, rate) as load:
        rollback_s, rolled = _timed(lambda: deployer.rollback("production")[0].version)
        time.sleep(1.0)
        deploy_s, deployed = _timed(
            lambda: deployer.deploy("production", run_id, approved=True).version
        )
    result = load.result
    return {
        "rate": rate,
        "rollback": {"seconds": round(rollback_s, 2), "to_version": rolled},
        "deploy": {"seconds": round(deploy_s, 2), "to_version": deployed},
        "load": result.as_dict() if result else None,
        "answers_by_version": dict(sorted(load.versions.items())),
    }


@contextlib.contextmanager
def _scratch_project(run_dir: Path) -> Iterator[list[str]]:
    """A throw-away project holding two copies of the production run, registered and deployed
    to test, staging and production (the first copy), on free ports."""
    from shoprec.deploy import deployer, services
    from shoprec.deploy.environments import ENVIRONMENTS
    from shoprec.policy import POLICY_FILE
    from shoprec.runs import RUN_RECORD, project_dir, runs_dir, state_dir
    from shoprec.tracking.store import local_uri
    from shoprec.tracking.sync import log_run

    saved = {name: os.environ.get(name) for name in
             ["SHOPREC_PROJECT_DIR", "MLFLOW_TRACKING_URI", "SHOPREC_EVENTS_URL",
              *(env.port_variable for env in ENVIRONMENTS.values())]}  # fmt: skip
    policies = project_dir() / POLICY_FILE.parent  # the gates judge the copies by these
    root = Path(tempfile.mkdtemp(prefix="shoprec-benchmark-"))
    shutil.copytree(policies, root / POLICY_FILE.parent)
    os.environ["SHOPREC_PROJECT_DIR"] = str(root)
    os.environ["MLFLOW_TRACKING_URI"] = local_uri(root)
    os.environ.pop("SHOPREC_EVENTS_URL", None)
    state_dir(root).mkdir()
    for env in ENVIRONMENTS.values():
        os.environ[env.port_variable] = str(_free_port())
    try:
        ids = []
        for copy in ("a", "b"):
            target = runs_dir(root) / f"{run_dir.name}-{copy}"
            shutil.copytree(run_dir, target, ignore=shutil.ignore_patterns("*.ipynb"))
            record = json.loads((target / RUN_RECORD).read_text())
            record["run_id"] = target.name
            (target / RUN_RECORD).write_text(json.dumps(record))
            log_run(target)
            ids.append(target.name)
        for env in ("test", "staging", "production"):
            deployer.deploy(env, ids[0], approved=env == "production")
        for env in ("test", "staging"):
            deployer.deploy(env, ids[1])
        deployer.deploy("production", ids[1], approved=True)
        yield ids
    finally:
        for env in ENVIRONMENTS.values():
            with contextlib.suppress(Exception):
                services.stop(env)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(root, ignore_errors=True)


def _row(name: str, result: LoadResult) -> str:
    return (f"| {name} | {result.requests_per_second:,.0f} | {result.p50_ms:.1f} ms | "
            f"{result.p99_ms:.1f} ms | {result.requests:,} | {result.failed} |")  # fmt: skip


def _markdown(report: dict[str, Any]) -> str:
    shoprec_run = LoadResult(**report["throughput"]["shoprec"])
    mlflow_run = LoadResult(**report["throughput"]["mlflow"])
    fixed = LoadResult(**report["fixed_rate"]["load"])
    ratio = report["throughput"]["ratio"]
    lines = [
        f"Model: `models:/shoprec@production` = version {report['model_version']} "
        f"({report['algorithm']}, run {report['run_id']}); {report['users']} random known users, "
        "k=10. Load from 127.0.0.1 only; the machine may be shared, so numbers vary run to run.",
        "",
        f"## Throughput at {report['connections']} connections "
        f"(wrk, 1 thread, {report['seconds']:g} s)",
        "",
        "| service | req/s | p50 | p99 | requests | errors |",
        "|---|---|---|---|---|---|",
        _row(f"shoprec ({report['workers']} workers, impression logging on)", shoprec_run),
        _row("mlflow models serve (defaults)", mlflow_run),
        "",
        f"shoprec / MLflow: **{ratio:.1f}x** (target: at least 5x) -> "
        f"{'met' if ratio >= 5 else 'NOT met'}.",
        "",
        f"## Fixed rate: {report['fixed_rate']['rate']:g} req/s for "
        f"{report['fixed_rate']['seconds']:g} s (open loop, latency from when each was due)",
        "",
        "| requests | errors | p50 | p90 | p99 | max | impressions dropped |",
        "|---|---|---|---|---|---|---|",
        f"| {fixed.requests:,} | {fixed.failed} | {fixed.p50_ms:.2f} ms | {fixed.p90_ms:.2f} ms | "
        f"{fixed.p99_ms:.2f} ms | {fixed.max_ms:.1f} ms | {report['impressions']['dropped']:g} |",
        "",
        f"Target p99 < 10 ms, 0 errors, 0 dropped -> {report['fixed_rate']['verdict']}.",
        "",
        "## Impressions",
        "",
        f"Successful /recommendations answers (the service's own count): "
        f"{report['impressions']['answered']:,}; impression records stored: "
        f"{report['impressions']['stored']:,} (by version: "
        f"{report['impressions']['stored_by_version']}); "
        f"spooled {report['impressions']['spooled']:g}, "
        f"dropped {report['impressions']['dropped']:g} -> "
        f"{'every answer recorded' if report['impressions']['match'] else 'MISMATCH'}.",
        "",
    ]
    deploy = report.get("deploy_under_load")
    if deploy:
        load = LoadResult(**deploy["load"])
        lines += [
            f"## Deploy and rollback under {deploy['rate']:g} req/s ({deploy['where']})",
            "",
            "| step | took | now serving |",
            "|---|---|---|",
            f"| rollback | {deploy['rollback']['seconds']} s | version "
            f"{deploy['rollback']['to_version']} |",
            f"| deploy | {deploy['deploy']['seconds']} s | version "
            f"{deploy['deploy']['to_version']} |",
            "",
            f"Requests: {load.requests:,}, failed: **{load.failed}** (target 0), p99 "
            f"{load.p99_ms:.1f} ms; answers by model version: {deploy['answers_by_version']}.",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when it ran (targets are reported, not asserted)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve")
    parser.add_argument("--seconds", type=float, default=15, help="wrk duration (default 15)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=500, help="fixed rate, req/s")
    parser.add_argument("--rate-seconds", type=float, default=30)
    parser.add_argument("--deploy-rate", type=float, default=200)
    parser.add_argument("--output", type=Path, default=DOCS / "serve", help="without suffix")
    args = parser.parse_args(argv)
    benchmark = Benchmark(
        "serve", "Serving: production against `mlflow models serve`", output=args.output
    )

    from shoprec.artifact import load_model
    from shoprec.deploy import deployer, services, state
    from shoprec.deploy.environments import get_environment
    from shoprec.runs import resolve_run
    from shoprec.tracking import registry
    from shoprec.tracking.store import client

    env = get_environment("production")
    current = state.current().get("production")
    if current is None:
        print("benchmark-serve: nothing deployed to production; run `make pipeline` first",
              file=sys.stderr)  # fmt: skip
        return 2
    version = registry.get_version(client(), current.version)
    model = load_model(registry.fetch(version))
    rng = np.random.default_rng(0)
    users = rng.choice(model.user_ids_, size=min(USERS, len(model.user_ids_)), replace=False)
    users = [int(user) for user in users]
    paths = [f"/recommendations?user_id={user}&k=10" for user in users]
    if services.health(env) is None:
        print("production is down; starting it", flush=True)
        deployer.start("production")
    print(f"production serves version {current.version} at {env.url}", flush=True)

    before, stored_before = _wait_for_flush(env.url), _stored("production")
    print(f"shoprec: wrk -c{args.connections} for {args.seconds:g} s ...", flush=True)
    ours = wrk(env.url, users, connections=args.connections, seconds=args.seconds)
    print(f"  {ours.requests_per_second:,.0f} req/s, p99 {ours.p99_ms:.1f} ms", flush=True)
    print(f"shoprec: {args.rate:g} req/s for {args.rate_seconds:g} s ...", flush=True)
    fixed = fixed_rate(env.url, paths, rate=args.rate, seconds=args.rate_seconds)
    print(f"  p99 {fixed.p99_ms:.2f} ms, {fixed.failed} errors", flush=True)
    after, stored_after = _wait_for_flush(env.url), _stored("production")

    def delta(name: str, **labels: str) -> float:
        return _total(after, name, **labels) - _total(before, name, **labels)

    answered = delta("shoprec_requests_total", endpoint="/recommendations", status="200")
    stored_by_version = {
        key: stored_after.get(key, 0) - stored_before.get(key, 0)
        for key in sorted(set(stored_after) | set(stored_before))
        if stored_after.get(key, 0) != stored_before.get(key, 0)
    }
    spooled = delta("shoprec_impression_records_total", outcome="spooled")
    dropped = delta("shoprec_impression_records_total", outcome="dropped")
    stored = sum(stored_by_version.values())
    impressions = {
        "answered": int(answered),
        "stored": stored,
        "stored_by_version": stored_by_version,
        "spooled": spooled,
        "dropped": dropped,
        "match": stored + spooled == answered and set(stored_by_version) <= {current.version},
    }
    print(f"impressions: {impressions}", flush=True)

    log = services.services_dir() / "mlflow-benchmark.log"
    print("mlflow models serve: starting ...", flush=True)
    with _mlflow_server(registry.model_uri("production"), log) as mlflow_url:
        print(f"mlflow: wrk -c{args.connections} for {args.seconds:g} s ...", flush=True)
        theirs = wrk(mlflow_url, users, post_path="/invocations", body_template=MLFLOW_BODY,
                     connections=args.connections, seconds=args.seconds)  # fmt: skip
    print(f"  {theirs.requests_per_second:,.0f} req/s, p99 {theirs.p99_ms:.1f} ms", flush=True)

    run_dir = resolve_run(current.run_id)
    if len(state.served_versions("production")) >= 2:
        print(f"rollback and deploy under {args.deploy_rate:g} req/s ...", flush=True)
        deploy = {"where": "this project", **_deploy_and_rollback(paths, args.deploy_rate,
                                                                   current.run_id)}  # fmt: skip
    else:
        print(f"deploy and rollback under {args.deploy_rate:g} req/s in a scratch copy "
              "(production has no previous version to roll back to) ...", flush=True)  # fmt: skip
        with _scratch_project(run_dir) as ids:
            where = "a scratch copy of the project: production has no previous version here"
            deploy = {"where": where, **_deploy_and_rollback(paths, args.deploy_rate, ids[1])}
    print(f"  failed requests: {deploy['load']['failed']}", flush=True)

    fixed_ok = fixed.p99_ms < 10 and fixed.failed == 0 and dropped == 0
    report = {
        "model_version": current.version,
        "run_id": current.run_id,
        "algorithm": model.algorithm,
        "users": len(users),
        "workers": services.worker_count_of(env),
        "connections": args.connections,
        "seconds": args.seconds,
        "throughput": {
            "shoprec": ours.as_dict(),
            "mlflow": theirs.as_dict(),
            "ratio": ours.requests_per_second / max(theirs.requests_per_second, 1e-9),
        },
        "fixed_rate": {
            "rate": args.rate,
            "seconds": args.rate_seconds,
            "load": fixed.as_dict(),
            "verdict": "met" if fixed_ok else "NOT met",
        },
        "impressions": impressions,
        "deploy_under_load": deploy,
    }
    page = benchmark.write(_markdown(report), report)
    print()
    print(page.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
