"""`make benchmark-serve-scale`: 10-million-event models trained, registered and served.

In a scratch copy of the project (its own tracking store, services on free ports, the repo's
deploy policy), on the 10M shop (`benchmarks.shop`) given as the `file` dataset:

1. `shoprec pipeline` trains and evaluates a co-occurrence model, then an ALS model (one point
   each, the scale benchmark's hyperparameters); both are registered like any run;
2. the co-occurrence run is deployed to test, staging and production with `shoprec deploy`: the
   seconds from each command to its version answering, and each production worker's resident
   memory. Production is deployed once test's and staging's workers have precomputed their
   lists: the three share these 2 cores, and each service is its own session, so the kernel
   (autogroup scheduling) shares the cores between them whatever the background threads' nice;
3. 500 requests/s for 30 s (open loop, latency from when each request was due) for users drawn
   from all 200,000: p50 and p99, twice: at once, while production's workers still precompute
   their lists in the background (users not reached yet are ranked on request), and again once
   they have precomputed every known user (`shoprec_precomputed_users`);
4. under that load, ALS is deployed to production (after test and staging; if its evaluation
   failed the gates, a second registered copy of the co-occurrence run instead; test's and
   staging's lists precomputed first) and then rolled back: failed requests, each step's
   seconds and the workers' peak resident memory.

Writes docs/benchmarks/serve-scale.md and .json. Targets: deploy <= 30 s, worker RSS <= 1.5 GB,
p99 < 20 ms at 500 req/s, 0 failed requests during the deploy and the rollback.
"""

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import ROOT, Benchmark
from benchmarks.scale import ALS, COOCCURRENCE
from benchmarks.serve import SteadyLoad, _free_port
from benchmarks.shop import load_interactions, scale_shop

RATE = 500.0
SECONDS = 30.0
USERS = 20_000  # distinct users drawn from all of them, each asked once or twice
TARGETS = {"deploy_seconds": 30.0, "worker_rss_mb": 1_500.0, "p99_ms": 20.0, "failed": 0}
PRECOMPUTE_TIMEOUT = 900.0  # seconds to wait for every worker's lists
PRECOMPUTED = re.compile(r'^shoprec_precomputed_users\{model_version="([^"]*)"\} (\S+)$', re.M)
SHOPREC = [sys.executable, "-m", "shoprec.cli"]
PRE_PRODUCTION = ("test", "staging")  # deployed, and their lists precomputed, first
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]+")


@contextlib.contextmanager
def scratch_project() -> Iterator[Path]:
    """A throw-away project: the repository's policies, its own store, services on free ports."""
    from shoprec.deploy import services
    from shoprec.deploy.environments import ENVIRONMENTS
    from shoprec.policy import POLICY_FILE
    from shoprec.runs import state_dir
    from shoprec.tracking.store import local_uri

    names = ["SHOPREC_PROJECT_DIR", "MLFLOW_TRACKING_URI", "SHOPREC_EVENTS_URL",
             *(env.port_variable for env in ENVIRONMENTS.values())]  # fmt: skip
    saved = {name: os.environ.get(name) for name in names}
    root = Path(tempfile.mkdtemp(prefix="shoprec-serve-scale-"))
    shutil.copytree(ROOT / POLICY_FILE.parent, root / POLICY_FILE.parent)
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    os.environ["SHOPREC_PROJECT_DIR"] = str(root)
    os.environ["MLFLOW_TRACKING_URI"] = local_uri(root)
    os.environ.pop("SHOPREC_EVENTS_URL", None)
    state_dir(root).mkdir(parents=True, exist_ok=True)
    for env in ENVIRONMENTS.values():
        os.environ[env.port_variable] = str(_free_port())
    try:
        yield root
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


def shoprec(root: Path, *args: str) -> tuple[float, str]:
    """Run `shoprec args` in the scratch project; its seconds and output (raises on failure)."""
    started = time.perf_counter()
    done = subprocess.run([*SHOPREC, *args], cwd=root, capture_output=True, text=True,
                          env=os.environ.copy(), check=False)  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"shoprec {' '.join(args)} exited {done.returncode}:\n"
                           f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")  # fmt: skip
    return seconds, done.stdout + done.stderr


def pipeline(root: Path, data: Path, algorithm: str, space: dict[str, list]) -> dict[str, Any]:
    """Train and evaluate one model on the shop with `shoprec pipeline`; its run id and time."""
    runs = root / "runs"
    before = {path.name for path in runs.iterdir()} if runs.exists() else set()
    seconds, output = shoprec(
        root, "pipeline", "--profile", "default", "--dataset", "file", "--quiet",
        "-p", f"dataset_options={json.dumps({'path': str(data)})}",
        "-p", f"algorithm={algorithm}", "-p", f"search_space={json.dumps(space)}",
    )  # fmt: skip
    new = [path.name for path in runs.iterdir() if path.name not in before
           and RUN_ID.fullmatch(path.name) and not path.is_symlink()]  # fmt: skip
    if len(new) != 1:
        raise RuntimeError(f"expected one new run in {runs}, found {new}")
    return {"algorithm": algorithm, "seconds": seconds, "run_id": new[0],
            "output": output.strip()[-500:]}  # fmt: skip


def deploy(root: Path, env_name: str, run_id: str) -> dict[str, Any]:
    """`shoprec deploy` one environment; the command's seconds and the version it serves."""
    from shoprec.deploy import services
    from shoprec.deploy.environments import get_environment

    extra = ["--approve"] if env_name == "production" else []
    seconds, output = shoprec(root, "deploy", "--env", env_name, "--run", run_id, *extra)
    state = services.health(get_environment(env_name)) or {}
    return {"env": env_name, "seconds": seconds, "health": state, "output": output.strip()[-300:]}


def second_version(root: Path, results: dict[str, Any]) -> str:
    """The run to deploy under load: ALS if its evaluation passed the gates, else a second
    registered copy of the co-occurrence run (the deploy and rollback are what is measured)."""
    from shoprec.runs import RUN_RECORD, TRACKING_FILE, runs_dir
    from shoprec.tracking.sync import log_run

    als = results["als_pipeline"]["run_id"]
    try:
        deploy(root, "test", als)
        return als
    except RuntimeError as refused:
        results["als_refused"] = str(refused).strip().splitlines()[-1]
        print(f"ALS not deployable: {results['als_refused']}", flush=True)
    first = runs_dir(root) / results["cooccurrence_pipeline"]["run_id"]
    copy = runs_dir(root) / f"{first.name}0"  # still a run id
    shutil.copytree(first, copy, ignore=shutil.ignore_patterns("*.ipynb", TRACKING_FILE))
    record = json.loads((copy / RUN_RECORD).read_text())
    record["run_id"] = copy.name
    (copy / RUN_RECORD).write_text(json.dumps(record))
    log_run(copy)
    return copy.name


def worker_memory(env_name: str, *, by_pid: bool = False) -> list[float] | dict[int, float]:
    """Resident memory of each process serving the environment (service and workers), in MB;
    by process id with `by_pid`."""
    import psutil

    from shoprec.deploy import services
    from shoprec.deploy.environments import get_environment

    pid = services.running_pid(get_environment(env_name))
    if pid is None:
        return {} if by_pid else []
    service = psutil.Process(pid)
    rss = {process.pid: round(process.memory_info().rss / 2**20, 1)
           for process in [service, *service.children(recursive=True)]}  # fmt: skip
    return rss if by_pid else list(rss.values())


def precomputed_users(env_name: str) -> dict[str, float]:
    """Known users whose lists are precomputed in the environment's workers (the fewest of any
    worker), by model version, from its `/metrics`."""
    from shoprec.deploy.environments import get_environment

    url = f"{get_environment(env_name).url}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - 127.0.0.1
        text = response.read().decode()
    return {version: float(value) for version, value in PRECOMPUTED.findall(text)}


def wait_until_precomputed(version: str, n_users: int, envs: tuple[str, ...]) -> float:
    """Seconds until every environment's workers hold all `n_users` lists of `version`."""
    started = time.perf_counter()
    while time.perf_counter() - started < PRECOMPUTE_TIMEOUT:
        if all(precomputed_users(env).get(version, 0) >= n_users for env in envs):
            return time.perf_counter() - started
        time.sleep(1.0)
    raise RuntimeError(f"version {version}: lists not precomputed in {PRECOMPUTE_TIMEOUT:g} s")


class PeakMemory:
    """The largest resident memory of each of the environment's processes, sampled twice a
    second in a background thread (MB, by pid)."""

    def __init__(self, env_name: str) -> None:
        self.env_name, self.peak_mb = env_name, {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            with contextlib.suppress(Exception):  # a process may end between two looks
                for pid, mb in worker_memory(self.env_name, by_pid=True).items():
                    self.peak_mb[pid] = max(mb, self.peak_mb.get(pid, 0.0))

    def __enter__(self) -> "PeakMemory":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def timed_load(url: str, paths: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """`fixed_rate`'s result, with production's precomputed users before and after."""
    from shoprec.service.loadgen import fixed_rate

    before = precomputed_users("production")
    load = fixed_rate(url, paths, rate=rate, seconds=seconds).as_dict()
    print(f"  p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms", flush=True)
    after = precomputed_users("production")
    return {**load, "precomputed_before": before, "precomputed_after": after,
            "load_average_after": os.getloadavg()}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Train, deploy, load; write the pages. Exit 0 when it ran (targets are reported)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=RATE)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    args = parser.parse_args(argv)
    benchmark = Benchmark("serve-scale", "Serving 10-million-event models")
    directory, shop = scale_shop()
    data = directory / "interactions.parquet"
    if not data.exists():
        load_interactions(directory).to_parquet(data)
    results: dict[str, Any] = {"shop": shop, "rate": args.rate, "seconds": args.seconds,
                               "targets": TARGETS}  # fmt: skip
    with scratch_project() as root:
        from shoprec.deploy import deployer
        from shoprec.deploy.environments import get_environment
        from shoprec.runs import model_dir, runs_dir

        space = {name: [value] for name, value in COOCCURRENCE.items()}
        results["cooccurrence_pipeline"] = pipeline(root, data, "cooccurrence", space)
        print(f"pipeline: {results['cooccurrence_pipeline']}", flush=True)
        space = {name: [value] for name, value in ALS.items()}
        results["als_pipeline"] = pipeline(root, data, "als", space)
        print(f"pipeline: {results['als_pipeline']}", flush=True)
        first = results["cooccurrence_pipeline"]["run_id"]
        with np.load(model_dir(runs_dir(root) / first) / "arrays.npz") as arrays:
            n_users = len(arrays["user_ids_"])  # ALS's too: the same training split
        results["deploys"] = [deploy(root, env, first) for env in PRE_PRODUCTION]
        version = results["deploys"][-1]["health"]["model_version"]
        wait_until_precomputed(version, n_users, PRE_PRODUCTION)  # production's cores to itself
        results["deploys"].append(deploy(root, "production", first))
        deployed_at = time.perf_counter()
        print(f"deploys: {results['deploys']}", flush=True)
        production = get_environment("production")
        results["worker_rss_mb"] = worker_memory("production")
        print(f"production processes' RSS (MB): {results['worker_rss_mb']}", flush=True)
        users = np.load(directory / "interactions.npz")["user_id"]
        drawn = np.random.default_rng(0).choice(np.unique(users), size=USERS, replace=False)
        paths = [f"/recommendations?user_id={int(user)}&k=10" for user in drawn]
        print(f"{args.rate:g} req/s for {args.seconds:g} s while precomputing ...", flush=True)
        results["fixed_rate_precomputing"] = timed_load(production.url, paths, args.rate,
                                                        args.seconds)  # fmt: skip
        waited = wait_until_precomputed(version, n_users, ("production",))
        results["precomputed"] = {"n_users": n_users,
                                  "seconds_after_deploy": time.perf_counter() - deployed_at,
                                  "waited_after_load": waited}  # fmt: skip
        results["worker_rss_mb_precomputed"] = worker_memory("production")
        print(f"precomputed: {results['precomputed']}, RSS (MB) "
              f"{results['worker_rss_mb_precomputed']}", flush=True)  # fmt: skip
        print(f"{args.rate:g} req/s for {args.seconds:g} s, every list precomputed ...", flush=True)
        results["fixed_rate"] = timed_load(production.url, paths, args.rate, args.seconds)
        second = second_version(root, results)
        results["second_deploys"] = [deploy(root, env, second) for env in PRE_PRODUCTION]
        second_label = results["second_deploys"][-1]["health"]["model_version"]
        wait_until_precomputed(second_label, n_users, PRE_PRODUCTION)
        with (
            PeakMemory("production") as memory,
            SteadyLoad(production.url, paths, args.rate) as steady,
        ):
            started = time.perf_counter()
            deployer.deploy("production", second, approved=True)
            deploy_seconds = time.perf_counter() - started
            time.sleep(2.0)
            started = time.perf_counter()
            deployer.rollback("production")
            rollback_seconds = time.perf_counter() - started
        results["under_load"] = {
            "second_version": second,
            "deploy_seconds": deploy_seconds,
            "rollback_seconds": rollback_seconds,
            "load": steady.result.as_dict() if steady.result else None,
            "answers_by_version": dict(sorted(steady.versions.items())),
            "worker_rss_mb_after": worker_memory("production"),
            "peak_rss_mb": sorted(memory.peak_mb.values()),
        }
        print(f"under load: {results['under_load']}", flush=True)
    page = benchmark.write(markdown(results), results)
    print(page.read_text())
    return 0


def _load_row(name: str, load: dict[str, Any]) -> str:
    version = next(iter(load["precomputed_before"]), None)
    before = load["precomputed_before"].get(version, 0)
    after = load["precomputed_after"].get(version, 0)
    return (f"| {name} | {before:,.0f} -> {after:,.0f} | {load['requests']:,} | {load['failed']} | "
            f"{load['p50_ms']:.2f} ms | {load['p90_ms']:.2f} ms | {load['p99_ms']:.2f} ms | "
            f"{load['max_ms']:.1f} ms | {load['load_average_after'][0]:.2f} |")  # fmt: skip


def _verdict(met: bool) -> str:
    return "met" if met else "**NOT met**"


def markdown(results: dict[str, Any]) -> str:
    """The page's body."""
    shop, under, done = results["shop"], results["under_load"], results["precomputed"]
    during, after = results["fixed_rate_precomputing"], results["fixed_rate"]
    production = next(step for step in results["deploys"] if step["env"] == "production")
    rss, rss_full = results["worker_rss_mb"], results["worker_rss_mb_precomputed"]
    peak = under["peak_rss_mb"]
    largest = max([*rss, *rss_full, *peak], default=0)
    failed = (under["load"] or {}).get("failed")
    mb = lambda values: ", ".join(f"{value:,.0f} MB" for value in values)  # noqa: E731
    lines = [
        f"The 10M shop ({shop['n_users']:,} users x {shop['n_items']:,} items, "
        f"{shop['n_interactions']:,} interactions) as the `file` dataset of a scratch project; "
        "requests from 127.0.0.1 only, bounded in time; test, staging and production run on the "
        "same 2 cores, two workers each, with the load generator; each version reaches "
        "production once test's and staging's workers have precomputed its lists (each service "
        "is its own session, so the kernel's autogroups would share the cores between their "
        "precomputing and production's requests whatever the threads' nice). "
        + (
            f"ALS was trained and evaluated but not deployable: {results['als_refused']}; the "
            "deploy under load uses a second registered copy of the co-occurrence run."
            if "als_refused" in results
            else "Both models passed the deploy gates; ALS is the version deployed under load."
        ),
        "",
        "| step | seconds |",
        "|---|---:|",
        f"| `shoprec pipeline`, co-occurrence {COOCCURRENCE} | "
        f"{results['cooccurrence_pipeline']['seconds']:,.0f} |",
        f"| `shoprec pipeline`, ALS {ALS} | {results['als_pipeline']['seconds']:,.0f} |",
        *(
            f"| `shoprec deploy --env {step['env']}` (co-occurrence), until it answers | "
            f"{step['seconds']:.1f} |"
            for step in results["deploys"]
        ),  # fmt: skip
        f"| production's workers hold all {done['n_users']:,} users' top-100 lists, after its "
        f"deploy | {done['seconds_after_deploy']:.0f} |",
        f"| run {under['second_version']} deployed to production under {results['rate']:g} "
        f"req/s | {under['deploy_seconds']:.1f} |",
        f"| rolled back under load | {under['rollback_seconds']:.1f} |",
        "",
        "A deployed version answers as soon as it is loaded and warmed; each worker then ranks "
        "every known user's top 100 in a background thread of lowered priority, and answers the "
        "users it has not reached yet by ranking them on request (the same lists).",
        "",
        "Resident memory of the production service's processes (service, then workers): "
        f"{mb(rss)} after the deploy; {mb(rss_full)} with every list precomputed; at most "
        f"{mb(peak)} during the deploy and rollback under load (two versions loaded side by "
        f"side); {mb(under['worker_rss_mb_after'])} after them.",
        "",
        f"## {results['rate']:g} requests/s for {results['seconds']:g} s, {USERS:,} users drawn "
        "from all",
        "",
        "| when | production's precomputed users (fewest of its workers), before -> after | "
        "requests | failed | p50 | p90 | p99 | max | load (1 min) after |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        _load_row("at once after the deploy, lists being precomputed", during),
        _load_row("every list precomputed", after),
        "",
        f"During the deploy and the rollback: {(under['load'] or {}).get('requests', 0):,} "
        f"requests, **{failed}** failed, p99 {(under['load'] or {}).get('p99_ms', 0):.1f} ms; "
        f"answers by version: {under['answers_by_version']}.",
        "",
        "## Targets",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        f"| deploy to production answering <= 30 s | {production['seconds']:.1f} s | "
        f"{_verdict(production['seconds'] <= 30)} |",
        f"| each worker <= 1.5 GB | {largest:,.0f} MB at most | "
        f"{_verdict(bool(rss) and largest <= 1_500)} |",
        f"| p99 < 20 ms at {results['rate']:g} req/s, lists being precomputed | "
        f"{during['p99_ms']:.2f} ms | {_verdict(during['p99_ms'] < 20)} |",
        f"| p99 < 20 ms at {results['rate']:g} req/s, every list precomputed | "
        f"{after['p99_ms']:.2f} ms | {_verdict(after['p99_ms'] < 20)} |",
        f"| 0 failed during deploy and rollback | {failed} | {_verdict(failed == 0)} |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
