"""`make benchmark-serve` end to end, in a tiny bounded configuration (so it cannot rot)."""

import json
import os
import shutil
from pathlib import Path

import pytest
from deployment import Shoprec, project, runs, shoprec  # noqa: F401

from benchmarks import serve as benchmark

pytestmark = pytest.mark.service


@pytest.fixture
def wrk_binary() -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("wrk not installed; CI must run .ci/install-wrk")
        pytest.skip("wrk not installed; install it with: bash .ci/install-wrk")


def test_benchmark_serve_runs_end_to_end(
    runs: Path,  # noqa: F811
    shoprec: Shoprec,  # noqa: F811
    wrk_binary: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    for run in ("run-a", "run-b"):
        for env in ("test", "staging", "production"):
            extra = ["--approve"] if env == "production" else []
            assert shoprec("deploy", "--env", env, "--run", run, *extra).code == 0
    output = tmp_path / "bench"
    argv = ["--seconds", "1", "--rate", "40", "--rate-seconds", "1", "--deploy-rate", "20"]
    assert benchmark.main([*argv, "--output", str(output)]) == 0

    report = json.loads(output.with_suffix(".json").read_text())
    ours, theirs = report["throughput"]["shoprec"], report["throughput"]["mlflow"]
    assert ours["requests"] > 0 and ours["failed"] == 0
    assert theirs["requests"] > 0 and theirs["failed"] == 0
    assert report["fixed_rate"]["load"]["requests"] == 40
    impressions = report["impressions"]
    assert impressions["match"] and impressions["dropped"] == 0
    assert impressions["stored"] == impressions["answered"] >= ours["succeeded"]
    assert set(impressions["stored_by_version"]) == {"2"}
    deploy = report["deploy_under_load"]
    assert deploy["where"] == "this project"
    assert deploy["rollback"]["to_version"] == "1" and deploy["deploy"]["to_version"] == "2"
    assert deploy["load"]["failed"] == 0 and deploy["load"]["requests"] > 0
    markdown = output.with_suffix(".md").read_text()
    assert "| mlflow models serve (defaults) |" in markdown and "shoprec / MLflow:" in markdown
    assert markdown in capsys.readouterr().out


def test_a_scratch_project_gives_production_a_version_to_roll_back_to(
    runs: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a fresh `make pipeline`, production has one version: the deploy-under-load step
    runs in a scratch copy of the project, judged by the repository's policies."""
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    paths = [f"/recommendations?user_id={user}&k=10" for user in (1, 2, 3)]
    with benchmark._scratch_project(runs / "run-a") as ids:
        assert ids == ["run-a-a", "run-a-b"]
        deploy = benchmark._deploy_and_rollback(paths, 20, ids[1])
    assert deploy["rollback"]["to_version"] == "1" and deploy["deploy"]["to_version"] == "2"
    assert deploy["load"]["requests"] > 0 and deploy["load"]["failed"] == 0
    assert set(deploy["answers_by_version"]) == {"1", "2"}
    assert os.environ["SHOPREC_PROJECT_DIR"] == str(runs.parent)  # the project is itself again
