"""`shoprec runs list`: every run with its recipe, metrics, verdict, version and environments."""

import json
from pathlib import Path

from deployment import Shoprec, project, runs, shoprec  # noqa: F401 - fixtures

from shoprec.tracking import registry
from shoprec.tracking.store import client


def test_runs_are_listed_newest_first_with_version_and_environments(
    runs: Path, shoprec: Shoprec
) -> None:
    registry.move_alias(client(), "staging", "2")
    registry.move_alias(client(), "production", "2")
    registry.move_alias(client(), "test", "1")

    listed = shoprec("runs", "list", "--json")

    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)
    assert [row["run_id"] for row in rows] == ["run-bad", "run-b", "run-a"]
    by_id = {row["run_id"]: row for row in rows}
    assert by_id["run-a"]["model_version"] == "1"
    assert by_id["run-a"]["environments"] == ["test"]
    assert by_id["run-b"]["environments"] == ["production", "staging"]
    assert by_id["run-bad"]["model_version"] is None and by_id["run-bad"]["environments"] == []
    assert by_id["run-bad"]["evaluation"] == "failed"

    table = shoprec("runs", "list").out.splitlines()
    assert len(table) == 4
    header = table[0]
    assert header.index("version") == table[2].index("2  ")  # columns line up
    assert table[2].startswith("run-b ") and "production, staging" in table[2]
    assert table[3].startswith("run-a ") and table[3].split()[-1] == "test"

    newest = shoprec("runs", "list", "--limit", "1").out.splitlines()
    assert newest[1].startswith("run-bad ")
    assert newest[-1] == "(1 of 3 runs; --limit 0 shows all)"


def test_no_runs_and_a_bad_limit_are_explained(project: Path, shoprec: Shoprec) -> None:
    empty = shoprec("runs", "list")
    assert empty.code == 0
    assert empty.out == f"no runs yet under {project / 'runs'}: make pipeline\n"

    refused = shoprec("runs", "list", "--limit", "-1")
    assert refused.code == 2
    assert "--limit -1: expected a number of runs >= 0 (0: all)" in refused.err


def test_rows_show_when_the_registry_cannot_be_read(
    runs: Path, shoprec: Shoprec, monkeypatch, tmp_path: Path
) -> None:
    unreadable = tmp_path / "not-a-database.db"
    unreadable.write_text("this is not SQLite")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{unreadable}")

    listed = shoprec("runs", "list", "--json")

    assert listed.code == 0
    assert [row["model_version"] for row in json.loads(listed.out)] == [None, None, None]
    assert listed.err.startswith("shoprec runs list: model versions and environments unknown: ")
