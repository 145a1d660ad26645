"""`shoprec pipeline --engine spark` end to end: a run whose model registers and loads like any.

Marked `spark` (skipped, saying why, without pyspark or a Java 17+ JDK). The notebooks start
their own `local[2]` Spark sessions (SHOPREC_SPARK_MASTER), one per notebook.
"""

import json
import os
import subprocess
import sys

import pytest

pyspark = pytest.importorskip("pyspark", reason="the Spark engine needs the 'spark' extra")

from shoprec.spark.session import java_problem  # noqa: E402

# Its notebooks start their own JVMs in child processes: it need not wait for the shared session's
# group, and runs beside it on the other worker.
pytestmark = [pytest.mark.spark, pytest.mark.notebook, pytest.mark.xdist_group("spark-pipeline")]

# Loads the registered version 1 through shoprec's verified path, as deploy and the service do,
# and prints what it serves and what its artifact says about the engine.
LOAD_REGISTERED = """
import json, sys
from shoprec.artifact import read_metadata
from shoprec.tracking import registry
from shoprec.tracking.store import client

version = registry.get_version(client(), "1")
directory = registry.fetch(version)
model = registry.load_pyfunc("1")
import pandas as pd
served = model.predict(pd.DataFrame({"user_id": [int(sys.argv[1])], "k": [5]}))
tags = client().get_run(version.run_id).data.tags
print(json.dumps({"metadata": read_metadata(directory)["metadata"],
                  "served": served["item_id"].tolist(), "run": version.tags["shoprec.run_id"],
                  "tags": {k: v for k, v in tags.items() if k.startswith(("shoprec.engine",
                                                                          "shoprec.spark"))}}))
"""


def _run(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=1200,
        check=False,
    )


@pytest.fixture(scope="module")
def java() -> None:
    problem = java_problem()
    if problem is not None:
        pytest.skip(f"no Java for Spark 4: {problem} (run .ci/install-jdk)")


def test_spark_pipeline_registers_a_model_that_loads_and_says_spark(java, project):
    result = _run(
        "-m", "shoprec.cli", "pipeline", "--profile", "smoke", "--engine", "spark", "--quiet",
        SHOPREC_SPARK_MASTER="local[2]",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    latest = project / "runs" / "latest"
    record = json.loads((latest / "run.json").read_text())
    assert record["status"] == "succeeded" and record["evaluation_passed"] is True
    assert {parameters["engine"] for parameters in record["parameters"].values()} == {"spark"}
    evaluation = json.loads((latest / "04_evaluate" / "evaluation.json").read_text())
    assert evaluation["status"] == "passed"
    candidate = evaluation["metrics"]["candidate"]
    assert candidate["ndcg"] > evaluation["metrics"]["baseline (popularity)"]["ndcg"]
    trained = json.loads((latest / "03_train" / "metrics.json").read_text())
    assert trained["engine"]["engine"] == "spark"
    assert trained["training"]["engine"] == "spark"

    user = json.loads(
        (latest / "04_evaluate" / "recommendations.csv").read_text().splitlines()[1].split(",")[0]
    )
    loaded = _run("-c", LOAD_REGISTERED, str(user))
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    registered = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert registered["run"] == record["run_id"]
    assert registered["metadata"]["engine"] == {
        "engine": "spark",
        "spark_version": pyspark.__version__,
        "spark_master": "local[2]",
    }
    assert registered["tags"] == {
        "shoprec.engine": "spark",
        "shoprec.spark_version": pyspark.__version__,
        "shoprec.spark_master": "local[2]",
    }  # tracked with the run, for search in MLflow
    expected = [
        int(line.split(",")[1])
        for line in (latest / "04_evaluate" / "recommendations.csv").read_text().splitlines()[1:]
        if int(line.split(",")[0]) == user
    ][:5]
    assert registered["served"] == expected  # served as evaluated on Spark


def test_engine_option_refuses_unknown_engines(project):
    result = _run("-m", "shoprec.cli", "pipeline", "--profile", "smoke", "--engine", "dask")
    assert result.returncode == 2
    assert "invalid choice: 'dask' (choose from 'local', 'spark')" in result.stderr
    assert not (project / "runs").exists()
