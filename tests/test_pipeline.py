"""`shoprec pipeline` end to end in the smoke profile, in a scratch project directory."""

import json

import pytest

pytestmark = pytest.mark.notebook


def test_pipeline_runs_every_notebook_into_a_new_run(smoke_run):
    assert smoke_run.returncode == 0, smoke_run.stderr
    project = smoke_run.project
    latest = project / "runs" / "latest"
    record = json.loads((latest / "run.json").read_text())
    assert record["status"] == "succeeded" and record["evaluation_passed"] is True
    assert record["profile"] == "smoke"
    assert latest.resolve() == smoke_run.run_dir and smoke_run.run_dir.name == record["run_id"]
    assert {p.name for p in (latest / "notebooks").iterdir()} == {
        "01_explore_data.ipynb",
        "03_train.ipynb",
        "04_evaluate.ipynb",
        "02_tune.ipynb",
    }
    assert (latest / "03_train" / "model" / "model.json").is_file()
    assert json.loads((latest / "04_evaluate" / "evaluation.json").read_text())["passed"]
    assert (latest / "pipeline.log").stat().st_size > 0
    assert record["parameters"]["04_evaluate"]["model_dir"].endswith("03_train/model")
    assert record["parameters"]["03_train"]["algorithm"] == "cooccurrence"  # defaults resolved
    assert len(record["git_commit"] or "") in (0, 40) and "lock_sha256" in record
    assert record["python"] and record["platform"] and record["duration_s"] > 0
    assert set(record["data_fingerprint"]) == {"train", "test"}
    tracked = json.loads((latest / "tracking.json").read_text())
    (location,) = tracked
    assert location == f"sqlite:///{project / '.shoprec' / 'mlflow.db'}"
    assert tracked[location]["model_version"] == "1"


def test_failing_cell_names_notebook_cell_and_error_and_keeps_the_partial_notebook(
    shoprec, project
):
    result = shoprec("pipeline", "--profile", "smoke", "--quiet", "-p", "timing_repeats=0")
    assert result.returncode == 1
    assert "notebook 03_train.ipynb failed in cell" in result.stderr
    assert "ParameterError: parameter timing_repeats=0 is not allowed" in result.stderr
    latest = project / "runs" / "latest"
    record = json.loads((latest / "run.json").read_text())
    assert record["status"] == "failed" and record["failed_notebook"] == "03_train"
    assert (latest / "notebooks" / "03_train.ipynb").is_file()
    assert not (latest / "notebooks" / "04_evaluate.ipynb").exists()


@pytest.mark.parametrize(
    ("argument", "message"),
    [("colour=blue", "no notebook has such a parameter"), ("=3", "expected name=value")],
)
def test_bad_overrides_are_refused_before_anything_runs(shoprec, project, argument, message):
    result = shoprec("pipeline", "--profile", "smoke", "-p", argument)
    assert result.returncode == 1
    assert message in result.stderr
    assert not (project / "runs").exists() or not any((project / "runs").iterdir())
