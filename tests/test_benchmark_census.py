"""`make benchmark-census` on a small command whose processes are known (so it cannot rot), and
what each kind of process of `make test` is called."""

import json
import sys
from pathlib import Path

import pytest

from benchmarks import census
from benchmarks.census import Process, category

BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {}: pass"


def test_a_child_started_by_a_test_is_counted_under_that_test_and_what_it_is(tmp_path: Path):
    parent = (
        "import os, subprocess, sys\n"
        "env = {**os.environ, 'PYTEST_CURRENT_TEST': 'tests/test_x.py::test_y (call)'}\n"
        f"subprocess.run([sys.executable, '-m', 'shoprec.cli', '--version'], env=env)\n"
        f"subprocess.run([sys.executable, '-c', {BURN.format(1.0)!r}], env=env)\n"
    )
    output = tmp_path / "census"
    code = census.main(["--output", str(output), "--log", str(tmp_path / "log"), "--",
                        sys.executable, "-c", parent])  # fmt: skip
    assert code == 0
    found = json.loads(output.with_suffix(".json").read_text())
    kinds = {row["category"]: row for row in found["categories"]}
    assert kinds["other Python"]["cpu_seconds"] >= 0.8  # the burner, seen while it ran
    assert "shoprec --version" not in kinds  # a flag is not a subcommand
    [test] = [row for row in found["tests"] if row["test_file"] == "tests/test_x.py"]
    assert test["cpu_seconds"] >= 0.8
    assert found["sampled_cpu_seconds"] <= found["busy_cpu_seconds"] + 0.5
    page = output.with_suffix(".md").read_text()
    assert "| tests/test_x.py |" in page and "| unseen (shorter than a sample" in page


def test_processes_running_before_the_census_count_only_what_they_use_during_it(tmp_path: Path):
    import subprocess

    before = subprocess.Popen([sys.executable, "-c", BURN.format(1.5) + "\nimport time\n"
                               "time.sleep(30)"])  # fmt: skip
    try:
        import time

        time.sleep(2.0)  # it has used its 1.5 CPU-s and sleeps
        output = tmp_path / "census"
        census.main(["--output", str(output), "--log", str(tmp_path / "log"), "--",
                     sys.executable, "-c", "pass"])  # fmt: skip
        found = json.loads(output.with_suffix(".json").read_text())
        assert sum(row["cpu_seconds"] for row in found["categories"]) < 1.0
    finally:
        before.kill()
        before.wait()


def test_a_failing_command_gives_its_exit_code_and_its_log(tmp_path: Path):
    output = tmp_path / "census"
    code = census.main(["--output", str(output), "--log", str(tmp_path / "log"), "--",
                        "make", "--no-print-directory", "no-such-target"])  # fmt: skip
    assert code == 2
    assert json.loads(output.with_suffix(".json").read_text())["exit_code"] == 2
    assert "No rule to make target 'no-such-target'" in (tmp_path / "log").read_text()


def test_a_bad_interval_is_refused_naming_the_option(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as stopped:
        census.main(["--interval", "0", "--", "true"])
    assert stopped.value.code == 2
    assert "--interval must be a positive number of seconds, not 0.0" in capsys.readouterr().err


TEMPLATE = "/v/bin/python -c import sys; from shoprec.warm_kernels import serve; serve(1) 10"


@pytest.mark.parametrize(
    ("name", "command", "parent", "expected"),
    [
        ("python", TEMPLATE, 100, "kernel template"),
        ("python", TEMPLATE, 7, "kernel forked from a template"),
        ("java", "java -cp x org.apache.spark.deploy.SparkSubmit", 1, "JVM (Spark)"),
        ("python", "/v/bin/python -m pyspark.daemon pyspark.worker", 1, "Spark's Python workers"),
        ("python", "/v/bin/python -m ipykernel_launcher -f k.json", 1, "kernel (launched)"),
        (
            "python",
            "/v/bin/python -u -c import sys;exec(eval(sys.stdin.readline()))",
            1,
            "pytest-xdist worker",
        ),
        (
            "python",
            "/v/bin/python -m shoprec.events.runner --env test --control-dir "
            "/tmp/pytest-of-root/pytest-3/popen-gw0/test_deploy0/.shoprec",
            1,
            "service (shoprec.events.runner)",
        ),
        ("pytest", "/v/bin/python .venv/bin/pytest -q tests/test_extract.py", 1, "pytest"),
        ("python", "/v/bin/python -m pytest -x tests", 1, "pytest"),
        ("python", "/v/bin/python -m shoprec.cli deploy --env test", 1, "shoprec deploy"),
        (
            "shoprec",
            "/v/bin/python .venv/bin/shoprec pipeline --profile default",
            1,
            "shoprec pipeline",
        ),
        ("python", "/v/bin/python -m shoprec.tracking.ui --port 1", 1, "MLflow server"),
        ("chromium", "/usr/lib/chromium/chromium --headless", 1, "Chromium"),
        ("postgres", "postgres: idle", 1, "PostgreSQL"),
        ("kworker/0:1", "", 2, "the OS kernel's threads"),
    ],
)
def test_each_kind_of_process_is_named(name, command, parent, expected):
    assert category(Process(1, parent, name, command, None), templates={7}) == expected
