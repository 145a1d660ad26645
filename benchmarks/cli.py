"""How fast the daily loop starts: `shoprec` commands and the pre-commit hooks, timed.

Prints the median wall time of each command over a few runs, beside a bare `python -c pass` run
the same way (the baseline: what any Python command costs on this machine), and checks the
targets: `shoprec --help` under 1 s, `shoprec status` and `shoprec stop` under 2 s, the
pre-commit hooks for a one-notebook commit under 10 s. `make benchmark-cli`; writes
docs/benchmarks/cli.md and .json.
"""

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import Benchmark

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"
REPEATS = 5
NOTEBOOK = "notebooks/lib/ranking.ipynb"


def median_seconds(command: list[str], cwd: Path, repeats: int = REPEATS) -> float:
    """Median wall time of `command` over `repeats` runs (its output discarded)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    """Time each command, print and write a table, exit 1 if a target is missed."""
    benchmark = Benchmark("cli", "CLI and hook start-up")
    scratch = Path(tempfile.mkdtemp(prefix="shoprec-cli-"))
    shutil.copytree(ROOT / "notebooks", scratch / "notebooks")
    (scratch / "pyproject.toml").write_text("")  # a project root with no runs or services
    hooks = [str(BIN / "pre-commit"), "run", "--files", NOTEBOOK]
    subprocess.run(hooks, cwd=ROOT, capture_output=True, check=False)  # installs hook envs once
    commands = [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"], ROOT, None),
        ("shoprec --help", [str(BIN / "shoprec"), "--help"], ROOT, 1.0),
        ("shoprec status", [str(BIN / "shoprec"), "status"], scratch, 2.0),
        ("shoprec stop --env test", [str(BIN / "shoprec"), "stop", "--env", "test"], scratch, 2.0),
        ("shoprec extract --check", [str(BIN / "shoprec"), "extract", "--check"], ROOT, None),
        (f"pre-commit hooks, {NOTEBOOK}", hooks, ROOT, 10.0),
    ]
    baseline, rows = None, []
    lines = ["| command | median s | x baseline | target s | verdict |", "|---|---:|---:|---:|---|"]
    for name, command, cwd, target in commands:
        seconds = median_seconds(command, cwd, 3 if name.startswith("pre-commit") else REPEATS)
        baseline = baseline or seconds
        verdict = "" if target is None else ("met" if seconds < target else "MISSED")
        rows.append({"command": name, "median_seconds": seconds, "target_seconds": target,
                     "verdict": verdict})  # fmt: skip
        shown_target = f"{target:.1f}" if target else "-"
        lines.append(f"| {name} | {seconds:.2f} | {seconds / baseline:.1f} | {shown_target} | "
                     f"{verdict} |")  # fmt: skip
    shutil.rmtree(scratch)
    page = benchmark.write("\n".join(lines) + "\n", {"rows": rows})
    print(page.read_text())
    return 1 if any(row["verdict"] == "MISSED" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
