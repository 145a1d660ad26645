"""`make benchmark-spark`: the 10-million-event shop through the local and the Spark engine.

Each engine fits co-occurrence and recommends 10 items for every user in a fresh process;
the table gives the seconds of each step and the peak resident memory of the driver (for Spark
in local mode: the Python driver plus the JVM that hosts Spark's driver and executors; the
Python workers that score are listed apart). Written to docs/benchmarks-spark.md.
"""

import argparse
import json
import multiprocessing
import os
import platform
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoprec.benchmark_scale import (
    INTERACTIONS_FILE,
    SCALE_MODELS,
    SCALE_SHOP,
)
from shoprec.runs import runs_dir

SPARK_CONFIG = {
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "64",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
}
MASTER = "local[2]"


def _write_shop(directory: Path, size: dict[str, int], seed: int = 42) -> dict[str, int]:
    """Generate the shop once (the scale benchmark's, or a smaller one) as plain arrays."""
    from shoprec.interactions import to_interactions
    from shoprec.synthetic import generate_shop

    directory.mkdir(parents=True, exist_ok=True)
    shop = generate_shop(**size, seed=seed)
    interactions = to_interactions(shop.events)
    np.savez(directory / INTERACTIONS_FILE, **{c: interactions[c].to_numpy() for c in interactions})
    return {**size, "n_events": len(shop.events), "n_interactions": len(interactions)}


def _rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MB.

    Not `getrusage`'s `ru_maxrss`: it survives `exec`, so a spawned child would report the peak
    of the parent that generated the shop.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _local(directory: str, queue: multiprocessing.Queue) -> None:
    from shoprec.models import make_model

    with np.load(Path(directory) / INTERACTIONS_FILE, allow_pickle=False) as stored:
        interactions = pd.DataFrame({name: stored[name] for name in stored.files})
    model = make_model("cooccurrence", **SCALE_MODELS["cooccurrence"])
    started = time.perf_counter()
    model.fit(interactions)
    fit_seconds = time.perf_counter() - started
    fit_peak = _rss_mb(os.getpid())
    started = time.perf_counter()
    recommendations = model.recommend(model.user_ids_, k=10)
    queue.put(
        {
            "engine": "local",
            "fit_seconds": fit_seconds,
            "recommend_seconds": time.perf_counter() - started,
            "recommendations": len(recommendations),
            "fit_peak_mb": fit_peak,
            "driver_peak_mb": _rss_mb(os.getpid()),
        }
    )


def _spark(directory: str, queue: multiprocessing.Queue) -> None:
    import psutil

    from shoprec.spark.models import fit_cooccurrence, recommend_all
    from shoprec.spark.session import spark_session, spark_version

    spark = spark_session(MASTER, config=SPARK_CONFIG)
    jvm = spark.sparkContext._gateway.proc.pid
    workers_peak = 0.0
    stop = threading.Event()

    def watch_workers() -> None:
        nonlocal workers_peak
        while not stop.wait(0.5):
            try:
                children = psutil.Process(jvm).children(recursive=True)
                total = sum(child.memory_info().rss for child in children) / 2**20
            except psutil.Error:
                continue
            workers_peak = max(workers_peak, total)

    threading.Thread(target=watch_workers, daemon=True).start()
    interactions = spark.read.parquet(str(Path(directory) / "interactions.parquet")).cache()
    interactions.count()
    started = time.perf_counter()
    model, fitted = fit_cooccurrence(interactions, **SCALE_MODELS["cooccurrence"])
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    recommendations = recommend_all(model, fitted, 10)
    count = recommendations.count()
    recommend_seconds = time.perf_counter() - started
    stop.set()
    python_peak = _rss_mb(os.getpid())
    queue.put(
        {
            "engine": f"spark {spark_version(spark)} ({MASTER}, "
            f"driver heap {SPARK_CONFIG['spark.driver.memory']})",
            "fit_seconds": fit_seconds,
            "recommend_seconds": recommend_seconds,
            "recommendations": count,
            "python_driver_peak_mb": python_peak,
            "jvm_peak_mb": _rss_mb(jvm),
            "driver_peak_mb": python_peak + _rss_mb(jvm),
            "python_workers_peak_mb": workers_peak,
        }
    )
    spark.stop()


def measure(directory: Path, engine: str) -> dict[str, Any]:
    """Fit and recommend with one engine in a fresh process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(
        target=_local if engine == "local" else _spark, args=(str(directory), queue)
    )
    child.start()
    result = queue.get()
    child.join()
    return result


def render(shop: dict[str, int], rows: list[dict[str, Any]]) -> str:
    """The results as the Markdown page docs/benchmarks-spark.md."""
    lines = [
        "# Scale benchmark: local engine vs Spark",
        "",
        "Written by `make benchmark-spark` (`python -m shoprec.spark.benchmark`). The synthetic "
        f"shop at scale: {shop['n_users']:,} users x {shop['n_items']:,} items, "
        f"{shop['n_events']:,} events, {shop['n_interactions']:,} interactions. "
        "Model: co-occurrence "
        f"{SCALE_MODELS['cooccurrence']}; top 10 for every user. Machine: "
        f"{platform.machine()}, {multiprocessing.cpu_count()} cores, shared.",
        "",
        "Peak driver memory is the resident peak of the driver: for the local engine the one "
        "Python process; for Spark in local mode the Python driver plus the JVM (which hosts "
        "Spark's driver and its executors). Spark's Python workers (which score users) are listed "
        "apart; on a cluster they run on the executors' machines.",
        "",
        "| engine | fit (s) | recommend for all (s) | recommendations | peak driver memory (MB) | "
        "Python workers peak (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        workers = row.get("python_workers_peak_mb")
        lines.append(
            f"| {row['engine']} | {row['fit_seconds']:.0f} | {row['recommend_seconds']:.0f} | "
            f"{row['recommendations']:,} | {row['driver_peak_mb']:,.0f} | "
            f"{'' if workers is None else f'{workers:,.0f}'} |"
        )
    lines += ["", "Raw numbers:", "", "```json", json.dumps(rows, indent=2), "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("docs/benchmarks-spark.md"))
    parser.add_argument("--engine", choices=("local", "spark"), action="append")
    parser.add_argument(
        "--events", type=int, default=SCALE_SHOP["n_events"],
        help="a smaller shop for a quick look (users and items shrink in proportion)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    share = args.events / SCALE_SHOP["n_events"]
    size = {
        "n_users": max(100, round(SCALE_SHOP["n_users"] * share)),
        "n_items": max(100, round(SCALE_SHOP["n_items"] * share)),
        "n_events": args.events,
    }
    directory = runs_dir() / f"benchmark-spark-{args.events}"
    shop_file = directory / "shop.json"
    if not shop_file.is_file():
        shop = _write_shop(directory, size)
        shop_file.write_text(json.dumps(shop))
    shop = json.loads(shop_file.read_text())
    parquet = directory / "interactions.parquet"
    if not parquet.exists():
        with np.load(directory / INTERACTIONS_FILE, allow_pickle=False) as stored:
            pd.DataFrame({name: stored[name] for name in stored.files}).to_parquet(parquet)
    rows = []
    for engine in args.engine or ["local", "spark"]:
        rows.append(measure(directory, engine))
        print(json.dumps(rows[-1]), flush=True)
    args.output.write_text(render({**size, **shop}, rows))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
