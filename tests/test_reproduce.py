"""`shoprec reproduce` and `shoprec runs compare` on real smoke-profile runs."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shoprec.cli import main
from shoprec.tracking import provenance
from shoprec.tracking.compare import ABSENT, Difference, compare

pytestmark = pytest.mark.notebook


def test_reproduce_is_identical_and_a_changed_parameter_is_named(
    smoke_run, monkeypatch: pytest.MonkeyPatch, project: Path
) -> None:
    """Reproductions of the shared smoke run, in its project (they leave `latest` and the
    registry alone); the re-run, which ships, in a project of its own."""
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(smoke_run.project))

    def shoprec(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "shoprec.cli", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)

    assert smoke_run.returncode == 0, smoke_run.stderr
    original = smoke_run.run_dir.name
    shared = smoke_run.project

    same = shoprec("reproduce", original, "--quiet")
    assert same.returncode == 0, same.stdout
    lines = same.stdout.splitlines()
    assert lines[0].startswith(f"reproducing run {original} as run ")
    copy = shared / "runs" / lines[0].split(" as run ")[1].split(" -> ")[0]
    assert lines[1].startswith("parameters: ") and lines[1].endswith(" identical, 0 different")
    assert lines[2].startswith("metrics: ") and lines[2].endswith(" identical, 0 different")
    assert lines[3] == f"reproduced: run {copy.name} is identical to run {original}"
    record = json.loads((copy / "run.json").read_text())
    assert record["reproduces"] == original and record["overrides"] == {}
    assert record["parameters"]["03_train"]["algorithm"] == "cooccurrence"  # from the record
    assert (copy / "tracking.json").is_file()

    # A reproduction checks; it does not ship: latest stays, no version is registered for it.
    assert (shared / "runs" / "latest").resolve().name == original
    listed = shoprec("runs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["run_id"]: row for row in json.loads(listed.stdout)}
    assert rows[original]["model_version"] == "1" and rows[original]["reproduces"] is None
    assert rows[copy.name]["model_version"] is None
    assert rows[copy.name]["reproduces"] == original
    assert rows[copy.name]["metrics"] == rows[original]["metrics"]
    assert rows[copy.name]["evaluation"] == "passed"
    table = shoprec("runs", "list").stdout.splitlines()
    assert table[0].split()[:5] == ["run", "started", "(UTC)", "profile", "dataset"]
    assert table[1].startswith(copy.name) and table[1].endswith(f"reproduces {original}")

    changed = shoprec("reproduce", original, "--quiet", "-p", "k=5")
    assert changed.returncode == 1, changed.stderr
    assert "  03_train.k: 10 -> 5" in changed.stdout.splitlines()
    verdict = changed.stdout.splitlines()[-1]
    assert verdict.startswith("NOT reproduced: run ")
    assert " in parameters 02_tune.k, 03_train.k; metrics " in verdict
    other = verdict.removeprefix("NOT reproduced: run ").split()[0]

    compared = shoprec("runs", "compare", original, other, "--html", str(project / "diff"))
    assert compared.returncode == 0, compared.stderr
    out = compared.stdout.splitlines()
    assert out[0] == f"run A {original} -> run B {other}"
    assert out[1] == "headline metrics (candidate, evaluation):"
    assert out[2].startswith("  ndcg@k ") and " -> " in out[2]  # with its delta
    assert "parameters: 1 changed:" in out
    assert "  k: 10 -> 5  (02_tune, 03_train)" in out
    assert "notebook 03_train.ipynb: changed" in out
    assert len(out) < 40  # a summary: no tuning rows, no notebook diffs
    assert (project / "diff" / "03_train" / "index.html").is_file()

    full = shoprec("runs", "compare", original, other, "--full")
    assert "k = 5" in full.stdout  # nbdime's diff of the injected parameters
    assert "  test.ndcg: " in full.stdout  # every metric that moved, by name

    identical = shoprec("runs", "compare", original, copy.name).stdout  # ids and paths differ
    assert "parameters: 0 changed" in identical
    for notebook in ("01_explore_data", "02_tune", "03_train", "04_evaluate"):
        assert f"notebook {notebook}.ipynb: unchanged" in identical

    unknown = shoprec("runs", "compare", original, "nope")
    assert unknown.returncode == 2
    assert "known runs: " in unknown.stderr and original in unknown.stderr

    shutil.copytree(smoke_run.run_dir, project / "runs" / original, symlinks=True)
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", str(project))
    rerun = shoprec("pipeline", "--rerun", original, "--quiet", "-p", "k=5")
    assert rerun.returncode == 0, rerun.stderr
    shipped = (project / "runs" / "latest").resolve()
    assert shipped.name not in {original, copy.name, other}
    record = json.loads((shipped / "run.json").read_text())
    assert record["reproduces"] is None and record["profile"] == "smoke"
    assert record["parameters"]["03_train"]["k"] == 5


def test_reproduce_refuses_what_it_cannot_rerun(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reproduce", "nope"]) == 2
    assert "run 'nope' not found" in capsys.readouterr().err
    failed = project / "runs" / "run-failed"
    failed.mkdir(parents=True)
    (failed / "run.json").write_text(json.dumps({"run_id": "run-failed", "status": "failed"}))
    assert main(["reproduce", "run-failed"]) == 2
    error = capsys.readouterr().err
    assert "run run-failed did not succeed (status failed); nothing to reproduce" in error


def test_environment_differences_are_named() -> None:
    recorded = {
        "git_commit": "a" * 40,
        "git_dirty": False,
        "lock_sha256": "1",
        "python": "3.11.0",
        "platform": "Linux",
    }
    now = {**recorded, "git_commit": "b" * 40, "git_dirty": True, "lock_sha256": "2"}
    lines = provenance.differences(recorded, now, {"numpy": "1.0"}, {"numpy": "2.0", "x": "1"})
    assert lines == [
        f"code differs: run made at commit {'a' * 40}, now at {'b' * 40}",
        "code differs: the work tree has uncommitted changes now",
        "packages differ: requirements.lock changed since the run",
        "packages differ: numpy 1.0 -> 2.0, x - -> 1",
    ]
    assert provenance.differences(recorded, recorded, None, {}) == []


def test_compare_reports_every_difference_exactly() -> None:
    result = compare({"a": 1, "b": 0.1 + 0.2, "c": "x"}, {"a": 1, "b": 0.3, "d": True})
    assert result.identical == 1
    assert result.differences == [
        Difference("b", 0.1 + 0.2, 0.3),
        Difference("c", "x", ABSENT),
        Difference("d", ABSENT, True),
    ]
