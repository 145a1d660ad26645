"""`make benchmark-spark`: the 10-million-event shop through the local engine and Spark.

Each engine fits co-occurrence and recommends 10 items for every user in a fresh process, side by
side in one run; Spark (`local[2]`) must give the local engine's arrays (checked here) and its
fit should take at most 3x the local fit on the same cores. Peak memory is each driver's resident
peak (for Spark in local mode: the Python driver plus the JVM that hosts Spark's driver and
executors; the Python workers that score are listed apart). Writes docs/benchmarks/spark.md and
.json.
"""

import argparse
import multiprocessing
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.report import Benchmark, peak_rss_mb, timed
from benchmarks.scale import COOCCURRENCE, K
from benchmarks.shop import load_interactions, scale_shop

SPARK_CONFIG = {
    "spark.driver.memory": "2g",
    "spark.sql.shuffle.partitions": "64",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "100000",
}
MASTER = "local[2]"
TARGET_FIT_RATIO = 3.0
ARRAYS = ("similarity_indptr_", "similarity_indices_", "similarity_data_", "seen_indices_")


def _rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def local_run(directory: str) -> dict[str, Any]:
    """Fit and recommend for all with the local engine; keep the arrays for Spark's check."""
    from shoprec.models import make_model

    interactions = load_interactions(Path(directory))
    model = make_model("cooccurrence", **COOCCURRENCE)
    _, fit = timed(lambda: model.fit(interactions))
    lists, recommend = timed(lambda: model.recommend(model.user_ids_, K))
    np.savez(
        Path(directory) / "local-arrays.npz", **{name: getattr(model, name) for name in ARRAYS}
    )
    return {"engine": "local", "fit": fit, "recommend": recommend,
            "recommendations": len(lists), "driver_peak_mb": peak_rss_mb()}  # fmt: skip


def spark_run(directory: str) -> dict[str, Any]:
    """Fit and recommend for all on Spark; compare its arrays with the local engine's."""
    import psutil

    from shoprec.spark.models import fit_cooccurrence, recommend_all
    from shoprec.spark.session import spark_session, spark_version

    parquet = Path(directory) / "interactions.parquet"
    if not parquet.exists():
        load_interactions(Path(directory)).to_parquet(parquet)
    spark = spark_session(MASTER, config=SPARK_CONFIG)
    jvm = spark.sparkContext._gateway.proc.pid
    workers_peak, stop = 0.0, threading.Event()

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
    interactions = spark.read.parquet(str(parquet)).cache()
    interactions.count()
    (model, fitted), fit = timed(lambda: fit_cooccurrence(interactions, **COOCCURRENCE))
    count, recommend = timed(lambda: recommend_all(model, fitted, K).count())
    stop.set()
    with np.load(Path(directory) / "local-arrays.npz") as local:
        same = {name: bool(np.array_equal(local[name], getattr(model, name))) for name in ARRAYS}
    python_peak, jvm_peak = peak_rss_mb(), _rss_mb(jvm)
    version = spark_version(spark)
    spark.stop()
    heap = SPARK_CONFIG["spark.driver.memory"]
    return {"engine": f"spark {version} ({MASTER}, driver heap {heap})",
            "fit": fit, "recommend": recommend, "recommendations": count,
            "same_arrays_as_local": same, "python_driver_peak_mb": python_peak,
            "jvm_peak_mb": jvm_peak, "driver_peak_mb": python_peak + jvm_peak,
            "python_workers_peak_mb": workers_peak}  # fmt: skip


def in_fresh_process(function: Any, *args: str) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def markdown(shop: dict[str, Any], local: dict[str, Any], spark: dict[str, Any]) -> str:
    """The page's body: the two engines side by side and the fit ratio."""
    ratio = spark["fit"]["seconds"] / local["fit"]["seconds"]
    lines = [
        f"The synthetic shop: {shop['n_users']:,} users x {shop['n_items']:,} items, "
        f"{shop['n_interactions']:,} interactions. Co-occurrence {COOCCURRENCE}; top {K} for "
        "every user. Seconds are wall time (CPU seconds of the driver process in brackets; Spark's "
        "work runs in its JVM and Python workers).",
        "",
        "| engine | fit | recommend for all | recommendations | peak driver memory | "
        "Python workers peak |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in (local, spark):
        workers = row.get("python_workers_peak_mb")
        lines.append(
            f"| {row['engine']} | {row['fit']['seconds']:,.1f} s | "
            f"{row['recommend']['seconds']:,.1f} s | {row['recommendations']:,} | "
            f"{row['driver_peak_mb']:,.0f} MB | "
            f"{'' if workers is None else f'{workers:,.0f} MB'} |"
        )
    same = all(spark["same_arrays_as_local"].values())
    lines += [
        "",
        f"Spark fit / local fit: **{ratio:.2f}x** (target at most {TARGET_FIT_RATIO:g}x) -> "
        f"{'met' if ratio <= TARGET_FIT_RATIO else '**NOT met**'}. Same arrays as the local fit "
        f"({', '.join(ARRAYS)}): {same}.",
        "",
        "Spark computes the item similarities in tasks, a block of items each, with the local "
        "kernel on a copy of the users x items structure shipped with the task; the per-user "
        "arrays come from the interactions collected to the driver, as before.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run both engines; exit 1 when Spark's arrays differ from the local engine's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    benchmark = Benchmark("spark", "Spark: the 10-million-event shop on both engines")
    directory, shop = scale_shop()
    local = in_fresh_process(local_run, str(directory))
    print(f"local: {local}", flush=True)
    spark = in_fresh_process(spark_run, str(directory))
    print(f"spark: {spark}", flush=True)
    results = {"shop": shop, "local": local, "spark": spark,
               "fit_ratio": spark["fit"]["seconds"] / local["fit"]["seconds"]}  # fmt: skip
    page = benchmark.write(markdown(shop, local, spark), results)
    print(page.read_text())
    return 0 if all(spark["same_arrays_as_local"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
