"""Issue 22, faults 1 and 2: deploys that undid each other, and `kill -9` that broke rollback.

- two production deploys at the same moment: one moved the alias back after the other had
  swapped, and that revert was not in the history;
- a deploy killed at the wrong instant left an alias with no history row (rollback then had
  nothing to roll back to) or an alias the service did not serve, with advice (`shoprec
  start`) that then refused.

Every command now holds the environment's lock and is one transaction. Here commands are
killed (SIGKILL, by the `SHOPREC_KILL_AT_STEP` hook) at every step boundary they pass; each
time `shoprec status --registry` must describe the state and name one command, and that
command must leave the environment serving what its alias names, with a history row for every
alias move. One deployed project (test, staging and production services, one worker each)
serves every case, so the cases run in order in one xdist group.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deployment import (  # noqa: F401 - fixtures
    Shoprec,
    aliases,
    live,
    make_run,
    scratch_project,
    shoprec,
    stop_services,
)

from shoprec.deploy import deployer, state, transaction
from shoprec.deploy.transaction import (
    ALIAS_MOVED,
    BEGUN,
    CANARY_ENDED,
    DONE,
    LOCKED,
    RECORDED,
    SERVED,
    SERVICE_STARTED,
    TARGET_WRITTEN,
)
from shoprec.models import Recommender
from shoprec.tracking.sync import log_run

pytestmark = [pytest.mark.faults, pytest.mark.service, pytest.mark.xdist_group("deploy-kills")]


@pytest.fixture(scope="module")
def deployed(
    tmp_path_factory: pytest.TempPathFactory,
    empty_store: Path,
    repo_root: Path,
    cooccurrence_model: Recommender,
) -> Iterator[Path]:
    """run-a (version 1) in every environment, run-b (version 2) in test and staging."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        project = scratch_project(
            tmp_path_factory.mktemp("deployed"), monkeypatch, empty_store, repo_root
        )
        monkeypatch.setenv("SHOPREC_WORKERS", "1")
        for run_id in ("run-a", "run-b"):
            log_run(make_run(project, run_id, cooccurrence_model))
        for env in ("test", "staging", "production"):
            deployer.deploy(env, "run-a", approved=True)
        for env in ("test", "staging"):
            deployer.deploy(env, "run-b")
        try:
            yield project
        finally:
            stop_services()


SWAP_STEPS = (LOCKED, BEGUN, TARGET_WRITTEN, SERVED, ALIAS_MOVED, RECORDED, DONE)
COMMITTED = (ALIAS_MOVED, RECORDED, DONE)  # the alias has moved: the command counts as done
KILL_VAR = "SHOPREC_KILL_AT_STEP"


def killed(step: str, *argv: str) -> None:
    """Run `shoprec argv` in its own process, which kills itself at `step` (SIGKILL)."""
    result = subprocess.run(
        [sys.executable, "-m", "shoprec.cli", *argv],
        env={**os.environ, KILL_VAR: f"{argv[0]}:{step}"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, (result.returncode, result.stderr)


def suggested(status_err: str) -> str:
    """The one command `shoprec status` says repairs what it found."""
    (command,) = set(re.findall(r"(?:repair|start) with: (shoprec .+)", status_err))
    return command


def repair(shoprec: Shoprec, command: str) -> None:  # noqa: F811
    fixed = shoprec(*command.split()[1:])
    assert fixed.code == 0, fixed.err
    again = shoprec("status", "--registry")
    assert again.code == 0, again.err


def repaired(shoprec: Shoprec, step: str) -> None:  # noqa: F811
    """`status --registry` describes the state and names one command; that command repairs it."""
    status = shoprec("status", "--registry")
    if step in (LOCKED, DONE):  # nothing was changed yet, or everything was
        assert status.code == 0, status.err
        return
    assert status.code == 1, status.out
    assert f"was killed at step {step!r}; it has not finished" in status.err
    assert suggested(status.err) == "shoprec start --env production"
    repair(shoprec, "shoprec start --env production")
    assert not transaction.journal_path("production").exists()


def consistent(before: list[state.Event], expected: str, action: str) -> None:
    """Production serves its alias, the history ends there, and it holds one row per move."""
    assert live("production")[0] == aliases()["production"] == expected
    assert state.served_versions("production")[-1] == expected
    moved = state.served_versions("production", before)[-1] != expected
    rows = [event for event in state.history("production") if event not in before]
    assert [(event.version, event.action) for event in rows] == (
        [(expected, action)] if moved else []
    )


@pytest.mark.parametrize("step", SWAP_STEPS)
def test_deploy_and_rollback_killed_at_every_step_are_repaired_by_the_command_status_names(
    deployed: Path,
    shoprec: Shoprec,  # noqa: F811
    step: str,
) -> None:
    assert live("production")[0] == "1"
    before = state.history("production")
    killed(step, "deploy", "--env", "production", "--run", "run-b", "--approve")
    repaired(shoprec, step)
    deployed_2 = step in COMMITTED  # killed after the alias moved: done, else undone
    consistent(before, "2" if deployed_2 else "1", "deploy")
    if not deployed_2:
        return

    before = state.history("production")
    killed(step, "rollback", "--env", "production")
    repaired(shoprec, step)
    rolled_back = step in COMMITTED
    consistent(before, "1" if rolled_back else "2", "rollback")
    if not rolled_back:
        assert shoprec("rollback", "--env", "production").code == 0  # rollback still works
        assert live("production")[0] == "1"


def test_a_canary_and_its_promotion_killed_between_alias_and_history_are_completed(
    deployed: Path,
    shoprec: Shoprec,  # noqa: F811
) -> None:
    killed(ALIAS_MOVED, "deploy", "--env", "production", "--run", "run-b", "--approve",
           "--canary", "0.5")  # fmt: skip
    repaired(shoprec, ALIAS_MOVED)
    assert live("production") == ("1", "run-a")
    assert deployer.canary_version("production").version == 2
    canary = state.history("production")[-1]
    assert (canary.version, canary.action, canary.fraction) == ("2", "canary", 0.5)

    before = state.history("production")
    killed(CANARY_ENDED, "promote", "--env", "production")
    repaired(shoprec, CANARY_ENDED)
    assert deployer.canary_version("production") is None
    consistent(before, "2", "promote")
    assert shoprec("rollback", "--env", "production").code == 0
    assert live("production")[0] == "1"


def test_a_start_killed_after_it_launched_the_service_is_repaired_by_start(
    deployed: Path,
    shoprec: Shoprec,  # noqa: F811
) -> None:
    assert shoprec("stop", "--env", "test").code == 0
    killed(SERVICE_STARTED, "start", "--env", "test")  # leaves a service starting up, orphaned
    status = shoprec("status", "--registry")
    if status.code != 0:  # still starting up: down, or not yet serving every worker
        assert suggested(status.err) == "shoprec start --env test"
        repair(shoprec, "shoprec start --env test")
    assert live("test") == ("2", "run-b") and aliases()["test"] == "2"


def test_commands_on_one_environment_wait_for_each_other_or_fail_with_no_wait(
    deployed: Path,
    shoprec: Shoprec,  # noqa: F811
    tmp_path: Path,
) -> None:
    assert live("production")[0] == "1"
    before = state.history("production")
    argv = [sys.executable, "-m", "shoprec.cli", "deploy", "--env", "production", "--run",
            "run-b", "--approve"]  # fmt: skip
    with transaction.locked("production", "maintenance"):
        refused = shoprec_process("rollback", "--env", "production", "--no-wait")
        assert refused.returncode == 1
        assert refused.stderr.startswith(
            "shoprec rollback: production: `shoprec maintenance` (pid "
        )
        assert "is changing it; try again once it is done" in refused.stderr
        logs = [tmp_path / f"deploy-{n}.err" for n in (1, 2)]
        both = []
        for log in logs:
            with log.open("w") as stderr:
                both.append(subprocess.Popen(argv, stderr=stderr))
        deadline = time.monotonic() + 120
        while not all("waiting for `shoprec maintenance`" in log.read_text() for log in logs):
            assert time.monotonic() < deadline and all(p.poll() is None for p in both)
            time.sleep(0.1)
        assert live("production")[0] == "1"  # nothing moved while the lock was held
    assert [process.wait(timeout=180) for process in both] == [0, 0]
    rows = [event for event in state.history("production") if event not in before]
    assert [(event.version, event.action) for event in rows] == [("2", "deploy")] * 2
    assert live("production")[0] == aliases()["production"] == "2"
    assert shoprec("status", "--registry").code == 0
    assert shoprec("rollback", "--env", "production").code == 0
    assert live("production")[0] == "1"


def shoprec_process(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "shoprec.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
