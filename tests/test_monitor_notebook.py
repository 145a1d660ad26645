"""05_monitor runs headless in the smoke profile on an event database the simulator makes: it
finds the taste shift and the CTR drop, and its intervals hold the simulator's truth. (That it
executes again into its committed file, byte for byte: tests/test_execute.py; its early states:
tests/test_monitor_states.py.)"""

import json
from pathlib import Path

import papermill
import pytest
from papermill.exceptions import PapermillExecutionError

from shoprec.execution import execute_notebook
from shoprec.kernels import AsyncUnixSocketKernelManager

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_monitor.ipynb"

pytestmark = pytest.mark.notebook


def test_monitor_notebook_reports_drop_drift_and_the_truth(tmp_path: Path) -> None:
    execute_notebook(NOTEBOOK, tmp_path / "05_monitor.ipynb", {"output_dir": str(tmp_path)})
    record = json.loads((tmp_path / "monitor.json").read_text())
    assert record["champion"] == "1" and record["challenger"] == "2"
    versions = record["summary"]["versions"]
    assert versions["1"]["impressions"] + versions["2"]["impressions"] == 1800
    for row in versions.values():
        assert row["ctr"]["low"] <= row["ctr"]["value"] <= row["ctr"]["high"]
        assert row["latency_p50_ms"] == row["latency_p99_ms"] == 0.0  # the simulated clock
    assert record["ctr_within_interval"] >= 0.9
    # the taste shift halfway through: CTR fell against the comparison window, and shoppers'
    # own choices left the champion's top lists (taste drift)
    assert any(line.startswith("ctr_drop ") for line in record["breaches"])
    assert any(line.startswith("taste_drift ") for line in record["breaches"])
    drift = record["summary"]["drift"]
    assert drift["taste_agreement"]["high"] < drift["taste_agreement_before"]["low"]
    assert all(row["hit_rate"]["trials"] == row["impressions"] for row in versions.values())
    assert all("error_rate" not in row for row in versions.values())  # no live service here
    assert record["not_judged"] == ["error rate: the service's /metrics was not read"]
    assert record["verdict"]["verdict"] in {"keep collecting", "roll back"}
    assert record["policy"]["version"] == 2


def test_monitor_notebook_refuses_a_bad_parameter(tmp_path):
    with pytest.raises(PapermillExecutionError, match="window_minutes=0 is not allowed"):
        papermill.execute_notebook(
            str(NOTEBOOK), str(tmp_path / "out.ipynb"),
            parameters={"output_dir": str(tmp_path), "window_minutes": 0},
            cwd=str(NOTEBOOK.parent), progress_bar=False, kernel_name="python3",
            kernel_manager_class=AsyncUnixSocketKernelManager,
        )  # fmt: skip


def test_monitor_notebook_refuses_service_requests_that_are_not_a_dict(tmp_path):
    with pytest.raises(PapermillExecutionError, match="service_requests=.*expected a dict"):
        papermill.execute_notebook(
            str(NOTEBOOK), str(tmp_path / "out.ipynb"),
            parameters={"output_dir": str(tmp_path), "service_requests": [3, 1500]},
            cwd=str(NOTEBOOK.parent), progress_bar=False, kernel_name="python3",
            kernel_manager_class=AsyncUnixSocketKernelManager,
        )  # fmt: skip
