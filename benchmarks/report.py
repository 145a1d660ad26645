"""What every benchmark records beside its rows (machine, date, load) and where it writes them."""

import json
import os
import platform
import re
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks"


def machine() -> dict[str, Any]:
    """The CPU, cores, memory and the numeric libraries this run used."""
    import numpy as np
    from threadpoolctl import threadpool_info

    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo") if "model name" in line),
        platform.processor() or platform.machine(),
    )
    memory_kb = next((int(line.split()[1]) for line in _read("/proc/meminfo")
                      if line.startswith("MemTotal:")), 0)  # fmt: skip
    blas = [f"{pool['internal_api']} {pool['version']}" for pool in threadpool_info()
            if pool["user_api"] == "blas"]  # fmt: skip
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": sorted(set(blas)),
    }


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages (`uptime`): runnable tasks on the machine."""
    return [round(value, 2) for value in os.getloadavg()]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (VmHWM), in MB."""
    for line in _read("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU time this process has used, all threads, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(action: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """`action()` and its wall seconds, CPU seconds (all threads) and the load average after."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = action()
    seconds = {
        "seconds": time.perf_counter() - wall,
        "cpu_seconds": cpu_seconds() - cpu,
        "load_after": load_average()[0],
    }
    return result, seconds


SUMMARY = re.compile(r"^=+ (.*\d+ passed.*) in [\d.]+s.*=+$", re.MULTILINE)
"""pytest's closing line, e.g. `===== 1524 passed, 1 skipped in 622.41s =====`."""


def busy_cpu_seconds() -> float:
    """CPU seconds the machine has been busy since boot (every core: user, system, interrupts)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def run_logged(command: list[str], log: Path) -> dict[str, Any]:
    """`command` from the project root, its output to `log`: its exit code, wall and busy CPU
    seconds, the share of the cores busy meanwhile, and pytest's summary line (None when it
    printed none)."""
    wall, cpu = time.perf_counter(), busy_cpu_seconds()
    with log.open("w") as output:
        code = subprocess.run(
            command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, check=False
        ).returncode
    seconds, busy = time.perf_counter() - wall, busy_cpu_seconds() - cpu
    summaries = SUMMARY.findall(log.read_text(errors="replace"))
    return {
        "exit_code": code,
        "seconds": round(seconds, 3),
        "busy_cpu_seconds": round(busy, 1),
        "cpu_busy_share": round(busy / (seconds * (os.cpu_count() or 1)), 3),
        "pytest": summaries[-1] if summaries else None,
        "log": str(log),
    }


@dataclass
class Benchmark:
    """One run of a benchmark: its name, when and where it ran, and what it found."""

    name: str
    title: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    load_at_start: list[float] = field(default_factory=load_average)
    clock: float = field(default_factory=time.perf_counter)
    output: Path | None = None
    """Where to write, without suffix (default: docs/benchmarks/<name>)."""

    def write(self, body: str, results: dict[str, Any]) -> Path:
        """Write docs/benchmarks/<name>.md (header, then `body`) and .json; return the .md."""
        load_at_end = load_average()
        about = {
            "benchmark": self.name,
            "command": f"make benchmark-{self.name}",
            "date": self.started.isoformat(timespec="seconds"),
            "total_seconds": round(time.perf_counter() - self.clock, 1),
            "machine": machine(),
            "load_average": {"start": self.load_at_start, "end": load_at_end},
            "uptime": _uptime(),
        }
        output = self.output or DOCS / self.name
        output.parent.mkdir(parents=True, exist_ok=True)
        data = {**about, **results}
        output.with_suffix(".json").write_text(json.dumps(data, indent=2, default=str) + "\n")
        spec = about["machine"]
        header = [
            f"# {self.title}",
            "",
            f"Written by `{about['command']}` on {about['date']} in "
            f"{about['total_seconds']:,.0f} s: {spec['cpu']}, {spec['cores']} cores, "
            f"{spec['memory_gb']} GB; Python {spec['python']}, NumPy {spec['numpy']}, "
            f"BLAS {', '.join(spec['blas']) or 'none found'}.",
            f"Load average (1, 5, 15 min) at the start {self.load_at_start}, at the end "
            f"{load_at_end}: the machine is shared, so absolute times move with the load; the "
            f"rows side by side ran in this one run. Raw numbers: `{output.name}.json`.",
            "",
        ]
        path = output.with_suffix(".md")
        path.write_text("\n".join(header) + "\n" + body.rstrip("\n") + "\n")
        return path


def _read(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return ""
