"""`shoprec pipeline --engine spark` end to end: a run whose model registers and loads like any.

Marked `spark` (skipped, saying why, without pyspark or a Java 17+ JDK). The notebooks reach
Spark as they would a cluster's: through a Spark Connect server (`local[2]` behind it) that the
test starts on 127.0.0.1 and names in SHOPREC_SPARK_MASTER. The local-session path is tested
by tests/test_spark.py and notebooks/lib/spark_engine.ipynb.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

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


CONNECT_SERVER = "org.apache.spark.sql.connect.service.SparkConnectServer"


@pytest.fixture(scope="module")
def spark_connect(java: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server on a free port of 127.0.0.1, `local[2]` behind it; its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = {
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
        "spark.driver.host": "127.0.0.1",
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
    }
    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    command = [str(submit), "--class", CONNECT_SERVER, "--master", "local[2]"]
    for key, value in settings.items():
        command += ["--conf", f"{key}={value}"]
    log = tmp_path_factory.mktemp("spark-connect") / "server.log"
    # The server's Python workers (pandas UDFs) run this interpreter, with this shoprec.
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"the Spark Connect server exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"no Spark Connect server: {log.read_text()}"
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        yield f"sc://127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_spark_pipeline_registers_a_model_that_loads_and_says_spark(spark_connect, project):
    result = _run(
        "-m", "shoprec.cli", "pipeline", "--profile", "smoke", "--engine", "spark", "--quiet",
        SHOPREC_SPARK_MASTER=spark_connect,
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
        "spark_master": spark_connect,
    }
    assert registered["tags"] == {
        "shoprec.engine": "spark",
        "shoprec.spark_version": pyspark.__version__,
        "shoprec.spark_master": spark_connect,
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
