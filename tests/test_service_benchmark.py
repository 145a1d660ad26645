"""`make benchmark-serve` end to end, in a tiny bounded configuration (so it cannot rot)."""

import json
import os
import shutil
from pathlib import Path

import pytest
from deployment import Shoprec, project, runs, shoprec  # noqa: F401

from shoprec.events import benchmark

pytestmark = pytest.mark.service


@pytest.fixture
def wrk_binary() -> None:
    if shutil.which("wrk") is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("wrk not installed; CI must run .ci/install-wrk")
        pytest.skip("wrk not installed; install it with: bash .ci/install-wrk")


@pytest.mark.parametrize(
    ("deployed_runs", "where"),
    [
        (("run-a", "run-b"), "this project"),  # production can roll back
        (("run-a",), "a scratch copy"),  # a fresh `make pipeline`: one version only
    ],
)
def test_benchmark_serve_runs_end_to_end(
    deployed_runs: tuple[str, ...],
    where: str,
    runs: Path,  # noqa: F811
    shoprec: Shoprec,  # noqa: F811
    wrk_binary: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    for run in deployed_runs:
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
    assert set(impressions["stored_by_version"]) == {str(len(deployed_runs))}
    deploy = report["deploy_under_load"]
    assert deploy["where"].startswith(where)
    assert deploy["rollback"]["to_version"] == "1" and deploy["deploy"]["to_version"] == "2"
    assert deploy["load"]["failed"] == 0 and deploy["load"]["requests"] > 0
    markdown = output.with_suffix(".md").read_text()
    assert "| mlflow models serve (defaults) |" in markdown and "shoprec / MLflow:" in markdown
    assert markdown in capsys.readouterr().out
