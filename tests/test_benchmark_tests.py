"""`make benchmark-tests` end to end on two quick make targets (so it cannot rot)."""

import json
from pathlib import Path

from benchmarks import tests as benchmark
from benchmarks.report import SUMMARY


def run(tmp_path: Path, full: str) -> tuple[int, dict, str]:
    """The benchmark with `make check-extract` as the fast target: exit code, JSON, page."""
    output = tmp_path / "tests"
    argv = ["--fast", "check-extract", "--full", full, "--output", str(output),
            "--logs", str(tmp_path / "logs")]  # fmt: skip
    code = benchmark.main(argv)
    found = json.loads(output.with_suffix(".json").read_text())
    return code, found, output.with_suffix(".md").read_text()


def test_three_runs_side_by_side_give_the_ratio_and_the_verdict(tmp_path: Path):
    code, found, page = run(tmp_path, "check-extract")
    assert code == 0
    assert [row["target"] for row in found["rows"]] == ["check-extract"] * 3
    for row in found["rows"]:
        assert row["exit_code"] == 0 and row["seconds"] > 0 and row["busy_cpu_seconds"] >= 0
        assert row["pytest"] is None  # not a pytest target
    fast = (found["rows"][0]["seconds"] + found["rows"][2]["seconds"]) / 2
    assert found["ratio"] == round(found["rows"][1]["seconds"] / fast, 3)
    assert found["verdict"] == ("met" if found["ratio"] <= 5 else "MISSED")
    assert "| 2 | `make check-extract` | 0 |" in page and "target at most 5x" in page


def test_a_failing_target_is_named_and_fails_the_benchmark(tmp_path: Path):
    code, found, page = run(tmp_path, "no-such-target")
    assert code == 1
    assert found["failed"] == ["no-such-target"]
    (log,) = [row["log"] for row in found["rows"] if row["target"] == "no-such-target"]
    assert Path(log).parent == tmp_path / "logs"
    assert "No rule to make target 'no-such-target'" in Path(log).read_text()
    assert "Failed: no-such-target" in page


def test_pytests_summary_line_is_found():
    printed = (
        "....\n"
        "=============== 1524 passed, 1 skipped in 622.41s (0:10:22) ===============\n"
        "CPURUN done\n"
    )
    assert SUMMARY.findall(printed) == ["1524 passed, 1 skipped"]
