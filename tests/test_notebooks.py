"""Every notebook runs headless with papermill in the smoke profile and writes the right values."""

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import nbformat
import pandas as pd
import papermill
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from papermill.exceptions import PapermillExecutionError
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook

from shoprec.kernels import AsyncUnixSocketKernelManager
from shoprec.policy import load_policy

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.notebook


def execute(name: str, output_dir: Path, **parameters) -> nbformat.NotebookNode:
    source = NOTEBOOKS / name
    output_dir.mkdir(parents=True, exist_ok=True)
    output = output_dir / Path(name).name
    papermill.execute_notebook(
        str(source),
        str(output),
        parameters={"profile": "smoke", "output_dir": str(output_dir), **parameters},
        cwd=str(source.parent),
        progress_bar=False,
        kernel_name="python3",
        kernel_manager_class=AsyncUnixSocketKernelManager,
    )
    return nbformat.read(output, as_version=4)


@pytest.fixture(scope="module")
def trained(smoke_run) -> Path:
    """03_train's output in the shared smoke run: the notebook executed with its defaults."""
    assert smoke_run.returncode == 0, smoke_run.stderr
    return smoke_run.run_dir / "03_train"


def test_explore_writes_the_data_summary(smoke_run):
    summary = json.loads((smoke_run.run_dir / "01_explore_data" / "summary.json").read_text())
    assert 190 <= summary["n_users"] <= 200 and summary["n_items"] == 300
    assert 5_000 < summary["n_events"] < 7_000
    assert 0 < summary["density"] < 0.2
    assert summary["top_20pct_item_share"] > 0.4
    assert set(summary["events_by_type"]) == {"view", "add_to_cart", "purchase"}


def test_train_writes_model_and_metrics(trained):
    result = json.loads((trained / "metrics.json").read_text())
    assert result["algorithm"] == "cooccurrence"
    assert result["k"] == 10
    assert 0.05 < result["metrics"]["ndcg"] < 1
    assert 0 < result["metrics"]["precision"] <= 1
    assert len(result["training"]["test_fingerprint"]) == 64
    assert {p.name for p in (trained / "model").iterdir()} == {"arrays.npz", "model.json"}


def test_train_is_deterministic(smoke_run, trained, tmp_path):
    record = json.loads((smoke_run.run_dir / "run.json").read_text())
    given = {k: v for k, v in record["parameters"]["03_train"].items() if k != "output_dir"}
    execute("03_train.ipynb", tmp_path, **given)  # as the pipeline ran it, tuning file and all
    first = json.loads((trained / "metrics.json").read_text())
    second = json.loads((tmp_path / "metrics.json").read_text())
    assert second["metrics"] == first["metrics"]
    assert second["training"] == first["training"]
    assert first["timings"]["fit_seconds"] > 0 and first["timings"]["peak_memory_mb"] > 0


def test_evaluate_passes_candidate_against_baseline(smoke_run):
    evaluated = smoke_run.run_dir / "04_evaluate"
    evaluation = json.loads((evaluated / "evaluation.json").read_text())
    assert evaluation["passed"] is True
    metrics = evaluation["metrics"]
    assert set(metrics) == {"candidate", "baseline (popularity)", "oracle (true tastes)"}
    assert metrics["candidate"]["ndcg"] > metrics["baseline (popularity)"]["ndcg"]
    assert metrics["oracle (true tastes)"]["ndcg"] > metrics["candidate"]["ndcg"]
    audit = pd.read_csv(evaluated / "recommendations.csv")
    assert list(audit.columns) == ["user_id", "item_id", "rank", "score"]
    assert audit.groupby("user_id").size().max() == 10
    assert len(pd.read_csv(evaluated / "test_interactions.csv")) > 0


def test_evaluate_compares_with_production_under_the_policy_not_parameters(trained, tmp_path):
    execute(
        "04_evaluate.ipynb",
        tmp_path,
        model_dir=str(trained / "model"),
        production_model_dir=str(trained / "model"),
        min_ndcg=0.99,  # not a parameter: the thresholds come from policy/deploy-policy.toml
    )
    evaluation = json.loads((tmp_path / "evaluation.json").read_text())
    assert evaluation["status"] == "passed" and evaluation["passed"] is True
    assert [check["passed"] for check in evaluation["checks"]] == [True, True, True]
    assert evaluation["checks"][0]["threshold"] == load_policy().min_ndcg
    assert evaluation["policy"]["sha256"] == load_policy().sha256
    assert evaluation["production"]["status"] == "compared"
    assert evaluation["metrics"]["production"] == evaluation["metrics"]["candidate"]


def test_tune_chooses_on_validation_and_writes_every_point(tmp_path):
    execute("02_tune.ipynb", tmp_path, algorithm="ease", search_space={"l2": [1.0, 100.0, 1000.0]})
    tuning = json.loads((tmp_path / "tuning.json").read_text())
    assert tuning["algorithm"] == "ease" and tuning["metric"] == "ndcg@10"
    assert len(tuning["results"]) == 3
    best = max(tuning["results"], key=lambda point: point["ndcg"])
    assert tuning["chosen"] == {"l2": best["l2"]}
    assert tuning["validation_score"] == pytest.approx(best["ndcg"])


def test_train_accepts_the_tuned_hyperparameters(tmp_path):
    execute("03_train.ipynb", tmp_path, algorithm="ease", hyperparameters={"l2": 123.0})
    result = json.loads((tmp_path / "metrics.json").read_text())
    assert result["hyperparameters"]["l2"] == 123.0
    assert {"map", "map_at_k", "hit_rate", "mrr", "novelty"} <= set(result["metrics"])


@pytest.mark.parametrize(
    ("name", "parameters", "message"),
    [
        (
            "03_train.ipynb",
            {"algorithm": "deep-magic"},
            "algorithm='deep-magic' is not allowed; expected one of ['popularity', 'cooc",
        ),
        (
            "03_train.ipynb",
            {"dataset": "nope"},
            "dataset='nope' is not allowed; expected one of ['synthetic', ",
        ),
        ("03_train.ipynb", {"k": 0}, "parameter k=0 is not allowed; expected an integer > 0"),
        ("03_train.ipynb", {"test_ratio": 1.5}, "parameter test_ratio=1.5 is not allowed"),
        (
            "01_explore_data.ipynb",
            {"profile": "huge"},
            "profile='huge' is not allowed; expected one of ['smoke', 'def",
        ),
        (
            "04_evaluate.ipynb",
            {"model_dir": "no/such/model"},
            "model_dir='no/such/model': path does not exist",
        ),
        (
            "04_evaluate.ipynb",
            {"model_dir": ".", "production_model_dir": "no/such/model"},  # "." exists
            "production_model_dir='no/such/model': path does not exist",
        ),
        ("03_train.ipynb", {"hyperparameters": {"l3": 1}}, "unknown names ['l3']"),
        ("03_train.ipynb", {"dataset": "file"}, "dataset 'file' needs option(s) path"),
        ("02_tune.ipynb", {"search_space": {"similarity": []}}, "expected a non-empty list"),
        ("02_tune.ipynb", {"metric": "accuracy"}, "parameter metric='accuracy' is not allowed"),
        (
            "03_train.ipynb",
            {"engine": "dask"},
            "parameter engine='dask' is not allowed; expected one of ['local', 'spark']",
        ),
        (
            "01_explore_data.ipynb",
            {"engine": "spark", "spark_master": "htp://typo:7077"},
            "parameter spark_master='htp://typo:7077' is not allowed; expected local[*], local[N]",
        ),
        (
            "04_evaluate.ipynb",
            {"spark_master": 7077},
            "parameter spark_master=7077 is not allowed; expected a string",
        ),
        (
            "02_tune.ipynb",
            {"engine": "spark", "algorithm": "ease"},
            "parameter algorithm='ease' is not available with engine='spark'; expected one of "
            "['popularity', 'cooccurrence', 'als'], or engine='local'",
        ),
        (
            "03_train.ipynb",
            {"engine": "spark", "split_method": "global_time"},
            "parameter split_method='global_time' is not available with engine='spark'",
        ),
        (
            "02_tune.ipynb",
            {"engine": "spark", "metric": "novelty"},
            "parameter metric='novelty' is not available with engine='spark'",
        ),
    ],
)
def test_bad_parameter_fails_in_the_first_cell_after_parameters(
    name, parameters, message, tmp_path, kernels
):
    source = load_notebook_node(str(NOTEBOOKS / name))  # as papermill reads it
    parameters_cell = next(
        i for i, cell in enumerate(source.cells) if "parameters" in cell.metadata.get("tags", [])
    )
    given = {"profile": "smoke", "output_dir": str(tmp_path), **parameters}
    notebook = parameterize_notebook(source, given)  # papermill injects one cell after it
    client = kernels(name)
    client.nb = notebook
    with pytest.raises(CellExecutionError) as failure:
        for index, cell in enumerate(notebook.cells[: parameters_cell + 3]):
            client.execute_cell(cell, index)
    assert failure.value.ename == "ParameterError"
    assert message in ANSI_ESCAPE.sub("", failure.value.evalue)
    assert index == parameters_cell + 2


@pytest.fixture(scope="module")
def kernels() -> Iterator[Callable[[str], NotebookClient]]:
    """One kernel per pipeline notebook, kept for all its bad-parameter cases (each case runs
    the notebook's cells again from the top, its imports already loaded): a kernel and the
    imports cost seconds, the check itself nothing."""
    clients: dict[str, NotebookClient] = {}

    def client(name: str) -> NotebookClient:
        if name not in clients:
            notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
            resources = {"metadata": {"path": str(NOTEBOOKS)}}
            clients[name] = NotebookClient(notebook, kernel_name="python3", resources=resources)
            clients[name].km = clients[name].create_kernel_manager()
            clients[name].start_new_kernel()
            clients[name].start_new_kernel_client()
        return clients[name]

    yield client
    for opened in clients.values():
        opened._cleanup_kernel()


def test_train_takes_hyperparameters_from_the_tuning_file(tmp_path):
    tune_dir, train_dir = tmp_path / "tune", tmp_path / "train"
    execute("02_tune.ipynb", tune_dir, algorithm="cooccurrence")
    chosen = json.loads((tune_dir / "tuning.json").read_text())["chosen"]
    execute("03_train.ipynb", train_dir, tuning_file=str(tune_dir / "tuning.json"))
    used = json.loads((train_dir / "metrics.json").read_text())["hyperparameters"]
    assert {name: used[name] for name in chosen} == chosen
    with pytest.raises(PapermillExecutionError, match="tunes 'cooccurrence', not algorithm='ease'"):
        execute(
            "03_train.ipynb",
            tmp_path / "bad",
            algorithm="ease",
            tuning_file=str(tune_dir / "tuning.json"),
        )
