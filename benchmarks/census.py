"""Where a command's CPU goes, process by process: by default `make test`.

While the command runs, every process on the machine is sampled from /proc (every
`--interval` s): its own CPU (user + system, not its reaped children's, so nothing is counted
twice), what it is (from its command line, and for a forked kernel from its parent) and the
test that started it (`PYTEST_CURRENT_TEST` in the environment it was started with). Processes
that live less than one interval are unseen: the table shows them as the gap between the
machine's busy CPU (/proc/stat) and what was sampled. `make benchmark-census` (about 13 min on
2 cores); writes docs/benchmarks/census.md and .json; exits with the command's exit code.
"""

import argparse
import os
import re
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import Benchmark, cpu_seconds, run_logged

TICKS = os.sysconf("SC_CLK_TCK")
TEMPLATE = "shoprec.warm_kernels import serve"
"""What a warm-kernel template's command line holds; its forks keep that command line."""
SUBCOMMAND = re.compile(r"(?:-m shoprec\.cli|bin/shoprec) (\w[\w-]*)")
PYTEST = re.compile(r"^\S*python\S* (-m pytest|\S*/pytest)( |$)|^\S*/pytest( |$)")
"""pytest itself (not a process whose arguments name a folder under /tmp/pytest-of-...)."""
TEST_VARIABLE = b"PYTEST_CURRENT_TEST="


@dataclass
class Process:
    """One process as sampled: its command line (read again when it execs), parent, the test
    that started it, and the CPU seconds it has used since the census began (a process already
    running then counts from its first sample)."""

    pid: int
    parent: int
    name: str
    command: str
    test: str | None
    baseline: float = 0.0
    total: float = 0.0

    @property
    def cpu(self) -> float:
        return self.total - self.baseline


def category(process: Process, templates: set[int]) -> str:
    """What the process is, in the words of the table."""
    command, name = process.command, process.name
    if TEMPLATE in command:
        return "kernel forked from a template" if process.parent in templates else "kernel template"
    if name == "java" or "/java " in command or command.startswith("java "):
        return "JVM (Spark)"
    if "pyspark.daemon" in command or "pyspark.worker" in command:
        return "Spark's Python workers"
    if "ipykernel" in command:
        return "kernel (launched)"
    if "import sys;exec(eval(sys.stdin.readline()))" in command:
        return "pytest-xdist worker"
    if PYTEST.search(command):
        return "pytest"
    if "shoprec.events.runner" in command:
        return "service (shoprec.events.runner)"
    if "shoprec.tracking.ui" in command or "mlflow" in command:
        return "MLflow server"
    if "shoprec" in command:
        found = SUBCOMMAND.search(command)
        return f"shoprec {found.group(1)}" if found else "other Python importing shoprec"
    if "chrom" in name or "chrom" in command:
        return "Chromium"
    if "postgres" in name:
        return "PostgreSQL"
    if name in ("git", "ruff", "wrk", "make", "bash", "sh", "uv"):
        return name
    if name.startswith(("kworker", "kdamond", "ksoftirqd", "rcu_")) or not command:
        return "the OS kernel's threads"
    if "python" in name or "python" in command:
        return "other Python"
    return f"other ({name})"


class Sampler(threading.Thread):
    """Samples every process of the machine (but this one) until stopped."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.processes: dict[tuple[int, int], Process] = {}
        self.samples = 0
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.is_set():
            self.sample()
            self._finished.wait(self.interval)
        self.sample()

    def stop(self) -> None:
        self._finished.set()
        self.join()

    def sample(self) -> None:
        """Read each process's CPU so far; a new one (or one that exec'd) is described again."""
        first = self.samples == 0
        self.samples += 1
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            pid = int(entry.name)
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue  # ended meanwhile
            name = stat[stat.find("(") + 1 : stat.rfind(")")]
            fields = stat[stat.rfind(")") + 2 :].split()
            parent, started = int(fields[1]), int(fields[19])
            cpu = (int(fields[11]) + int(fields[12])) / TICKS
            known = self.processes.get((pid, started))
            if known is None or known.name != name:
                command = _read(pid, "cmdline").replace("\0", " ").strip()
                baseline = cpu if first else (known.baseline if known else 0.0)
                known = self.processes[(pid, started)] = Process(
                    pid, parent, name, command, _started_by(pid), baseline
                )
            known.total = cpu


def _read(pid: int, what: str) -> str:
    try:
        return Path(f"/proc/{pid}/{what}").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _started_by(pid: int) -> str | None:
    """The test file in the environment the process was started with, if any."""
    try:
        variables = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for variable in variables:
        if variable.startswith(TEST_VARIABLE):
            return variable[len(TEST_VARIABLE) :].decode(errors="replace").split("::")[0]
    return None


def census(command: list[str], log: Path, interval: float) -> dict[str, Any]:
    """Run `command` from the project root (output to `log`) while sampling; the CPU seconds by
    category and by test file, and what was not seen."""
    sampler, own = Sampler(interval), cpu_seconds()
    sampler.start()
    try:
        run = run_logged(command, log)
    finally:
        sampler.stop()
    processes = list(sampler.processes.values())
    warm = {p.pid for p in processes if TEMPLATE in p.command}
    templates = {p.pid for p in processes if p.pid in warm and p.parent not in warm}
    by_category, counts, by_test = Counter(), Counter(), Counter()
    for process in processes:
        if process.cpu <= 0:
            continue
        kind = category(process, templates)
        by_category[kind] += process.cpu
        counts[kind] += 1
        if process.test and kind not in ("pytest-xdist worker", "pytest"):
            by_test[process.test] += process.cpu
    return {
        "command": command,
        **run,
        "sampled_cpu_seconds": round(sum(by_category.values()), 1),
        "sampler_cpu_seconds": round(cpu_seconds() - own, 1),
        "samples": sampler.samples,
        "interval": interval,
        "categories": [
            {"category": kind, "processes": counts[kind], "cpu_seconds": round(cpu, 1)}
            for kind, cpu in by_category.most_common()
        ],
        "tests": [
            {"test_file": test, "cpu_seconds": round(cpu, 1)} for test, cpu in by_test.most_common()
        ],
    }


def table(found: dict[str, Any], top_tests: int) -> str:
    """The census as markdown: categories, then the test files whose processes cost most."""
    busy = found["busy_cpu_seconds"] or 1.0
    lines = [
        f"`{' '.join(found['command'])}`: exit {found['exit_code']}, {found['seconds']:,.1f} s "
        f"wall, the machine busy for {found['busy_cpu_seconds']:,.1f} CPU-s"
        + (f"; pytest: {found['pytest']}" if found["pytest"] else "") + ".",
        "",
        "| what | processes | CPU s | share of busy | CPU s each |",
        "|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for row in found["categories"]:
        lines.append(
            f"| {row['category']} | {row['processes']} | {row['cpu_seconds']:,.1f} | "
            f"{row['cpu_seconds'] / busy:.1%} | {row['cpu_seconds'] / row['processes']:.2f} |"
        )
    unseen = found["busy_cpu_seconds"] - found["sampled_cpu_seconds"] - found["sampler_cpu_seconds"]
    lines += [
        f"| this census (sampling every {found['interval']} s) | 1 | "
        f"{found['sampler_cpu_seconds']:,.1f} | {found['sampler_cpu_seconds'] / busy:.1%} | |",
        f"| unseen (shorter than a sample, or ended between two) | | {unseen:,.1f} | "
        f"{unseen / busy:.1%} | |",
        "",
        f"The test files whose processes (kernels excepted when a template forked them: they "
        f"carry the template's environment) cost most, top {top_tests}:",
        "",
        "| test file | CPU s of its processes |",
        "|---|---:|",
    ]
    lines += [f"| {row['test_file']} | {row['cpu_seconds']:,.1f} |"
              for row in found["tests"][:top_tests]]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the command under the census, print and write the tables; exit as the command did."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.census", description=__doc__)
    parser.add_argument("command", nargs="*", default=["make", "--no-print-directory", "test"],
                        help="what to run (default: make test); put it after --")  # fmt: skip
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--top", type=int, default=25, help="how many test files to list")
    parser.add_argument("--output", type=Path, help="where to write, without suffix")
    parser.add_argument("--log", type=Path, help="where the command's output goes")
    args = parser.parse_args(argv)
    if not args.interval > 0:
        parser.error(f"--interval must be a positive number of seconds, not {args.interval}")
    benchmark = Benchmark("census", "Where make test's CPU goes", output=args.output)
    log = args.log or Path(tempfile.mkdtemp(prefix="shoprec-census-")) / "output.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    found = census(args.command, log, args.interval)
    page = benchmark.write(table(found, args.top), found)
    print(page.read_text())
    return found["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
