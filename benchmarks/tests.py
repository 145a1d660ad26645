"""How long `make test` takes beside `make test-fast`, on this machine, in one run.

Runs `make test-fast`, then `make test`, then `make test-fast` again (the two fast runs bracket
the full one, so a change of load shows as a gap between them), each as a user types it, and
records its wall time, the CPU the whole machine was busy for meanwhile (from /proc/stat: the
suite's work is spread over kernels, services, JVMs and browsers that outlive no parent to
account them) and pytest's summary line. The target (issue 18): `make test` at most 5x
`make test-fast`. `make benchmark-tests` (about 13 min on 2 cores); writes
docs/benchmarks/tests.md and .json; exits 1 when the target is missed.
"""

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.report import Benchmark, run_logged

TARGET_RATIO = 5.0


def run_target(target: str, log: Path) -> dict[str, Any]:
    """`make <target>` as a user types it, measured by `run_logged`."""
    return {"target": target, **run_logged(["make", "--no-print-directory", target], log)}


def main(argv: list[str] | None = None) -> int:
    """Run the three targets in turn, print and write the table, exit 1 if the target is missed
    or a run failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tests", description=__doc__)
    parser.add_argument("--fast", default="test-fast", help="the daily loop's make target")
    parser.add_argument("--full", default="test", help="the whole suite's make target")
    parser.add_argument("--output", type=Path, help="where to write, without suffix")
    parser.add_argument("--logs", type=Path, help="where each run's output goes (default: a "
                        "new temporary folder)")  # fmt: skip
    args = parser.parse_args(argv)
    benchmark = Benchmark("tests", "make test beside make test-fast", output=args.output)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="shoprec-benchmark-tests-"))
    logs.mkdir(parents=True, exist_ok=True)
    order = [args.fast, args.full, args.fast]
    rows = [run_target(target, logs / f"{i}-{target}.log") for i, target in enumerate(order)]
    fast_seconds = (rows[0]["seconds"] + rows[2]["seconds"]) / 2
    ratio = rows[1]["seconds"] / fast_seconds
    cpu_ratio = rows[1]["busy_cpu_seconds"] / (
        (rows[0]["busy_cpu_seconds"] + rows[2]["busy_cpu_seconds"]) / 2
    )
    failed = [row["target"] for row in rows if row["exit_code"] != 0]
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    lines = [
        "| run | make target | exit | wall s | busy CPU s | CPU busy | pytest |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for i, row in enumerate(rows, 1):
        lines.append(
            f"| {i} | `make {row['target']}` | {row['exit_code']} | {row['seconds']:.1f} | "
            f"{row['busy_cpu_seconds']:.1f} | {row['cpu_busy_share']:.0%} | "
            f"{row['pytest'] or '-'} |"
        )
    lines += [
        "",
        f"`make {args.full}` took **{ratio:.2f}x** `make {args.fast}`'s wall time (the mean of "
        f"runs 1 and 3) and {cpu_ratio:.2f}x its busy CPU; target at most {TARGET_RATIO:g}x: "
        f"**{verdict}**." + (f" Failed: {', '.join(failed)} (logs in {logs})." if failed else ""),
    ]
    results = {"rows": rows, "ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3),
               "target_ratio": TARGET_RATIO, "verdict": verdict, "failed": failed}  # fmt: skip
    page = benchmark.write("\n".join(lines) + "\n", results)
    print(page.read_text())
    return 1 if failed or verdict == "MISSED" else 0


if __name__ == "__main__":
    sys.exit(main())
