"""Issue 11, faults 8 and 10 (the pipeline's part): interrupted runs, owned parameters, run
references outside runs/, a read-only tracking store.

- Ctrl-C left `runs/latest` at a run marked "running" forever, and `runs sync --all` exited 1;
- `-p output_dir=...` was accepted and silently ignored;
- a run given as a path outside `runs/` was accepted by deploy and `runs compare`;
- a read-only tracking store printed about 90 lines of traceback.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from shoprec.runs import RunError, resolve_run

pytestmark = pytest.mark.faults


def _wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.notebook
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_is_marked_and_skipped_by_sync_all(
    project: Path, shoprec, signum: int
) -> None:
    runs = project / "runs"
    done = runs / "run-done"
    done.mkdir(parents=True)
    (done / "run.json").write_text(json.dumps({"run_id": "run-done", "status": "failed"}))
    (runs / "latest").symlink_to("run-done")
    child = subprocess.Popen(
        [sys.executable, "-m", "shoprec.cli", "pipeline", "--profile", "smoke", "--quiet"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        started = _wait_for(lambda: any(runs.glob("*/notebooks/01_explore_data.ipynb")), 120)
        assert started, "the pipeline never started its first notebook"
        time.sleep(1.0)
        child.send_signal(signum)
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 128 + signum, err
    (run_dir,) = [path for path in runs.iterdir() if path.name.startswith("20")]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted"
    assert signal.Signals(signum).name in record["error"]
    assert f"run {run_dir.name} interrupted by {signal.Signals(signum).name}" in err
    assert os.readlink(runs / "latest") == "run-done"  # never a run that did not complete
    synced = shoprec("runs", "sync", "--all")
    assert synced.returncode == 0, synced.stderr
    assert f"{run_dir.name}: skipped: run {run_dir.name} was interrupted" in synced.stderr
    named = shoprec("runs", "sync", run_dir.name)
    assert named.returncode == 1 and "outputs are partial" in named.stderr


def test_run_left_running_by_a_dead_process_is_skipped(project: Path, shoprec) -> None:
    finished = subprocess.Popen(["true"])  # noqa: S607
    finished.wait()
    run_dir = project / "runs" / "run-killed"
    run_dir.mkdir(parents=True)
    record = {"run_id": "run-killed", "status": "running", "pid": finished.pid}
    (run_dir / "run.json").write_text(json.dumps(record))
    result = shoprec("runs", "sync", "--all")
    assert result.returncode == 0, result.stderr
    assert "run-killed: skipped: run run-killed never finished" in result.stderr


@pytest.mark.parametrize("name", ["output_dir", "model_dir", "tuning_file", "production_model_dir"])
def test_parameters_the_pipeline_owns_are_refused(project: Path, shoprec, name: str) -> None:
    result = shoprec("pipeline", "--profile", "smoke", "-p", f"{name}=/tmp/elsewhere")
    assert result.returncode == 1
    assert f"-p {name}: set by the pipeline itself" in result.stderr
    assert not (project / "runs").exists()


def test_run_references_must_name_runs_inside_runs(project: Path, shoprec, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "run.json").write_text(json.dumps({"run_id": "outside", "status": "succeeded"}))
    runs = project / "runs"
    runs.mkdir()
    (runs / "sneaky").symlink_to(outside)
    for reference in (str(outside), "../outside", "sneaky", "..", "."):
        with pytest.raises(RunError, match="runs are kept only"):
            resolve_run(reference)
    compare = shoprec("runs", "compare", str(outside), str(outside))
    assert compare.returncode == 2 and "not a path" in compare.stderr
    deploy = shoprec("deploy", "--env", "test", "--run", "../outside")
    assert deploy.returncode == 2 and "runs are kept only under runs/" in deploy.stderr


def test_read_only_tracking_store_is_one_paragraph(
    store_project: Path, shoprec, cooccurrence_model, fake_run, monkeypatch
) -> None:
    # MLflow makes a folder named after the `file:` URI relative to the working directory:
    # keep it in the test's project, not in the checkout
    monkeypatch.chdir(store_project)
    fake_run(store_project, "run-ro", cooccurrence_model)
    database = store_project / ".shoprec" / "mlflow.db"
    uri = f"sqlite:///file:{database}?mode=ro&uri=true"
    result = shoprec("runs", "sync", "run-ro", MLFLOW_TRACKING_URI=uri)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) <= 2
    assert "is read-only (attempt to write a readonly database)" in result.stderr
    assert "make the database and its folder writable" in result.stderr
