"""How long `shoprec report` takes, against one `make pipeline` run measured beside it.

In a scratch git repository made from the project's files (three commits of identical code, so
every pipeline does the same work), each round times, one after the other:

- `make pipeline`: the default-profile pipeline, then the deploys to test, staging and
  production (on free ports; the services are stopped afterwards);
- `shoprec pipeline --profile default` alone (the part of `make pipeline` a report repeats);
- a cold report, `shoprec report --base C0 --head C1`: base and head both run (empty cache);
- a report against the cached base, `--head C2`: only head runs.

Targets (issue 20): cold <= 2.5x and cached <= 1.2x the `make pipeline` of the same round (the
ratios to the pipeline alone are printed too, the stricter comparison). The
machine's load (`uptime`) is printed with each measurement: other work disturbs the times, the
ratios of neighbouring measurements less. Run it from the project root: `make benchmark-report`.
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ROUNDS = int(os.environ.get("ROUNDS", "2"))
TARGETS = {"cold report": 2.5, "cached report": 1.2}


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=benchmark", "-c", "user.email=b@example.com", *args]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, check=True).stdout


def scratch_repository(where: Path, heads: int) -> tuple[Path, str, list[str]]:
    """The project's tracked files in a new repository: a base commit and `heads` commits that
    only add a line to README.md."""
    repo = where / "repo"
    for path in git(ROOT, "ls-files").splitlines():
        if (ROOT / path).is_file():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / path, repo / path)
    for name in ("requirements.lock", "pyproject.toml"):  # older than the env: make skips setup
        os.utime(repo / name, (0, 0))
    git(repo, "init", "--quiet", "--initial-branch=main")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--no-verify", "-m", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    commits = []
    for number in range(heads):
        git(repo, "checkout", "--quiet", "-B", f"head{number}", base)
        with (repo / "README.md").open("a") as readme:
            readme.write(f"\nHead {number}.\n")
        git(repo, "commit", "--quiet", "--no-verify", "-am", f"head {number}")
        commits.append(git(repo, "rev-parse", "HEAD").strip())
    git(repo, "checkout", "--quiet", "main")
    for name in ("requirements.lock", "pyproject.toml"):
        os.utime(repo / name, (0, 0))
    return repo, base, commits


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def timed(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    started = time.perf_counter()
    with log.open("w") as out:
        result = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed ({result.returncode}); see {log}")
    return seconds


def main() -> int:
    """Time ROUNDS rounds, print each measurement and the ratios; exit 1 if a target is missed."""
    scratch = Path(tempfile.mkdtemp(prefix="shoprec-report-benchmark-"))
    repo, base, heads = scratch_repository(scratch, 2 * ROUNDS)
    env = {name: value for name, value in os.environ.items() if name != "MLFLOW_TRACKING_URI"}
    env.update(
        PYTHONPATH=str(repo / "src"),
        SHOPREC_PROJECT_DIR=str(repo),
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        **{f"SHOPREC_PORT_{name}": str(free_port()) for name in ("TEST", "STAGING", "PRODUCTION")},
    )
    shoprec = [sys.executable, "-m", "shoprec.cli"]
    missed = 0
    print(
        f"{'round':<6} {'measurement':<16} {'seconds':>8} {'x make pipeline':>16} "
        f"{'x pipeline alone':>17} {'load':>6}"
    )
    try:
        for number in range(ROUNDS):
            env["SHOPREC_CACHE_DIR"] = str(scratch / f"cache-{number}")
            before = load()
            make = timed(
                ["make", "--no-print-directory", "pipeline", f"ENV_BIN={BIN}"],
                repo,
                env,
                scratch / f"make-pipeline-{number}.log",
            )
            print(
                f"{number + 1:<6} {'make pipeline':<16} {make:>8.1f} {1:>16.2f} "
                f"{'':>17} {before:>6}"
            )
            before = load()
            alone = timed(
                [*shoprec, "pipeline", "--profile", "default", "--quiet"],
                repo,
                env,
                scratch / f"pipeline-{number}.log",
            )
            print(
                f"{number + 1:<6} {'pipeline alone':<16} {alone:>8.1f} {alone / make:>16.2f} "
                f"{1:>17.2f} {before:>6}"
            )
            for name, head in (("cold report", heads[2 * number]),
                               ("cached report", heads[2 * number + 1])):  # fmt: skip
                before = load()
                seconds = timed(
                    [*shoprec, "report", "--base", base, "--head", head,
                     "--out", str(scratch / f"{name.split()[0]}-{number}")],
                    repo,
                    env,
                    scratch / f"{name.split()[0]}-report-{number}.log",
                )  # fmt: skip
                verdict = "ok" if seconds / make <= TARGETS[name] else "MISSED"
                missed += verdict == "MISSED"
                print(
                    f"{number + 1:<6} {name:<16} {seconds:>8.1f} {seconds / make:>16.2f} "
                    f"{seconds / alone:>17.2f} {before:>6}  (target {TARGETS[name]}x: {verdict})",
                    flush=True,
                )
    finally:
        subprocess.run([*shoprec, "stop"], cwd=repo, env=env, capture_output=True)
    print(f"logs and reports: {scratch}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
