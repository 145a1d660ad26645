"""The online loop on real local services: a canary, simulated shoppers over HTTP, the monitor
ending the losing canary, the reason in the registry and history, then promotion."""

import json
from pathlib import Path

import httpx
import pytest
from deployment import (  # noqa: F401 - fixtures
    Shoprec,
    aliases,
    live,
    make_run,
    project,
    served_model,
    shoprec,
)

from shoprec.deploy import deployer, state
from shoprec.deploy.environments import get_environment
from shoprec.models import Recommender
from shoprec.service.canary import in_canary
from shoprec.simulation.database import shuffled_model
from shoprec.tracking.sync import log_run


def _production_lists(users: range) -> dict[int, str]:
    url = get_environment("production").url
    with httpx.Client(base_url=url, timeout=5.0) as client:
        return {
            user: client.get("/recommendations", params={"user_id": user}).json()["model"][
                "version"
            ]
            for user in users
        }


@pytest.mark.service
def test_canary_simulation_monitor_and_auto_rollback(
    project: Path,
    cooccurrence_model: Recommender,
    smoke_split,
    shoprec: Shoprec,
    monkeypatch: pytest.MonkeyPatch,
    repo_root: Path,
) -> None:
    monkeypatch.setenv("SHOPREC_WORKERS", "1")
    (project / "notebooks").symlink_to(repo_root / "notebooks")
    log_run(make_run(project, "run-good", cooccurrence_model))
    log_run(make_run(project, "run-poor", shuffled_model(smoke_split[0], 1)))
    for env in ("test", "staging"):
        assert shoprec("deploy", "--env", env, "--run", "run-good").code == 0
    assert shoprec("deploy", "--env", "production", "--run", "run-good", "--approve").code == 0
    refused = shoprec("deploy", "--env", "production", "--run", "run-poor", "--approve",
                      "--canary", "0.5")  # fmt: skip
    assert refused.code == 1 and "staging serves run 'run-good', not 'run-poor'" in refused.err
    for env in ("test", "staging"):
        assert shoprec("deploy", "--env", env, "--run", "run-poor").code == 0
    started = shoprec("deploy", "--env", "production", "--run", "run-poor", "--approve",
                      "--canary", "0.5")  # fmt: skip
    assert started.code == 0, started.err
    assert "serves 50% of users as a canary" in started.out
    assert aliases()["production"] == "1" and deployer.canary_version("production").version == 2

    versions = _production_lists(range(60))
    assert versions == {u: "2" if in_canary(u, 0.5, "2") else "1" for u in range(60)}
    assert versions == _production_lists(range(60))  # the same user, the same arm
    (row,) = [line.split() for line in shoprec("status").out.splitlines() if "production" in line]
    assert row[2:4] == ["1", "2"] and row[4] == "(50%)" and row[-1] == "up"
    assert shoprec("stop", "--env", "production").code == 0
    assert shoprec("start", "--env", "production").code == 0  # with its canary, as it was
    assert versions == _production_lists(range(60))
    assert served_model("production")["canary_fraction"] == 0.5

    simulated = shoprec("simulate", "--env", "production", "--users", "150", "--rate", "60",
                        "--duration", "20", "--profile", "smoke", "--shop-seed", "7",
                        "--seed", "3", "--json")  # fmt: skip
    assert simulated.code == 0, simulated.err
    summary = json.loads(simulated.out)
    assert 300 <= summary["requests"] <= 1200 and summary["failed_events"] == 0
    truth = summary["expected_ctr_by_version"]
    assert truth["1"] > truth["2"]

    monitored = shoprec("monitor", "--env", "production", "--window", "30", "--comparison", "0",
                        "--check", "--auto-rollback")  # fmt: skip
    assert "auto-rollback: canary version 2 ended; every user gets version 1" in monitored.out
    assert deployer.canary_version("production") is None and live("production")[0] == "1"
    assert set(_production_lists(range(60)).values()) == {"1"}
    history = shoprec("history", "--env", "production").out
    assert "canary-rollback (monitor: version 2 worse than version 1" in history
    assert state.served_versions("production") == ["1"]
    report = sorted((project / "runs").glob("monitor-*/monitor.json"))
    record = json.loads(report[-1].read_text())
    assert record["verdict"]["verdict"] == "roll back"
    # the error rate per version, from the service's /metrics since its restart: 60 lists
    # asked above, then the simulated shoppers'; none failed
    errors = {v: record["summary"]["versions"][v]["error_rate"] for v in ("1", "2")}
    assert sum(rate["trials"] for rate in errors.values()) == 60 + summary["requests"]
    assert all(rate["successes"] == 0 and rate["high"] < 0.05 for rate in errors.values())
    assert (project / ".shoprec" / "mlartifacts" / "shoprec-monitor").is_dir()
    assert not Path("mlruns").exists()

    assert shoprec("promote", "--env", "production").code == 2

    # Without a canary: production's new version against the version it replaced.
    assert shoprec("deploy", "--env", "production", "--run", "run-poor", "--approve").code == 0
    simulated = shoprec("simulate", "--env", "production", "--users", "150", "--rate", "60",
                        "--duration", "15", "--profile", "smoke", "--shop-seed", "7",
                        "--seed", "4")  # fmt: skip
    assert simulated.code == 0, simulated.err
    report = simulated.out.splitlines()  # for a person; --json above for machines
    assert report[0].startswith("simulated 150 shoppers on production (http://127.0.0.1:")
    assert " lists asked, 0 failed; " in report[0] and report[0].endswith(" events sent, 0 failed")
    assert report[1].startswith("  version ") and " lists, true CTR 0." in report[1]
    assert report[-1].startswith("ground truth: ") and "ground_truth.csv" in report[-1]
    monitored = shoprec("monitor", "--env", "production", "--window", "30", "--comparison", "0",
                        "--auto-rollback")  # fmt: skip
    assert monitored.code == 0, monitored.err
    assert "auto-rollback: production rolled back from version 2 to version 1" in monitored.out
    assert live("production")[0] == "1" and aliases()["production"] == "1"
    history = shoprec("history", "--env", "production").out.splitlines()
    assert history[-1].split()[1:5] == ["production", "1", "run-good", "rollback"]
    assert "(monitor: version 2 worse than version 1: challenger significantly worse" in history[-1]
