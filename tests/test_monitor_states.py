"""Monitoring from the first minute: 05_monitor in every early state of a deploy, and `shoprec
monitor`'s verdict line and one-line failure.

Each state says what it cannot judge yet and raises no alert: no traffic (the command right
after a deploy), one time bucket, one version and an empty comparison window (the first minute
of traffic), lists but no feedback yet, a canary with too few lists. One event database holds
the states, one environment each, made in process by the simulator (shoppers of the smoke shop
against the real serving code) in a few seconds.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from shoprec.artifact import save_model
from shoprec.cli import main
from shoprec.events.store import EventStore
from shoprec.execution import execute_notebook
from shoprec.models import Recommender
from shoprec.service.served import load_served_model
from shoprec.simulation.database import shuffled_model
from shoprec.simulation.inprocess import ModelRouter, Simulation, to_store_records
from shoprec.simulation.world import World

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_monitor.ipynb"

pytestmark = pytest.mark.notebook


@dataclass(frozen=True)
class State:
    """Shoppers of one early state: how many visits, how fast, the canary's share."""

    visits: int
    rate: float  # visits per simulated second
    canary: float = 0.0
    feedback: bool = True


# No traffic: `shoprec monitor` right after a deploy, below.
STATES = {
    # a minute of lists: one time bucket, one version, nothing in the comparison window
    "first-minute": State(60, 1.0),
    "no-feedback": State(600, 0.5, feedback=False),  # 20 minutes of lists
    "small-canary": State(600, 0.5, canary=0.03),  # about 18 challenger lists
}
# What each state's report must say it cannot judge yet (the start of a line of `not_judged`).
WAITING = {
    "first-minute": [
        "the window's lists fall in one time bucket (10 minutes): no trend over time yet",
        "one version served (version 1): no challenger to promote or roll back",
        "the comparison window (the 30 minutes before the window) holds no lists",
        "item drift: ",
    ],
    "no-feedback": ["no feedback events yet for the window's 600 lists"],
    "small-canary": ["challenger version 2 has "],
}


@pytest.fixture(scope="module")
def states(tmp_path_factory, smoke_data, smoke_split, cooccurrence_model: Recommender):
    """The event database (one environment per state) and the two versions' artifacts."""
    folder = tmp_path_factory.mktemp("states")
    models = {"1": cooccurrence_model, "2": shuffled_model(smoke_split[0], 5)}
    model_dirs = {v: str(save_model(m, folder / v, {})) for v, m in models.items()}
    served = {v: load_served_model(Path(d), None, "production", v) for v, d in model_dirs.items()}
    url = f"sqlite:///{folder / 'events.db'}"
    store = EventStore(url)
    for seed, (name, state) in enumerate(STATES.items(), start=11):
        router = ModelRouter(served["1"], served["2"], state.canary, seed=seed)
        shoppers = Simulation(World(smoke_data.shop.tastes), router, seed=seed, rate=state.rate)
        impressions, feedback = to_store_records(list(shoppers.run(state.visits)), name, seed)
        store.add_impressions(impressions)
        if state.feedback:
            store.add_feedback(feedback)
    store.dispose()
    return url, model_dirs


@pytest.mark.parametrize("state", STATES)
def test_every_early_state_says_what_it_cannot_judge_and_raises_no_alert(
    states, state: str, tmp_path: Path
) -> None:
    url, model_dirs = states
    served = {v: d for v, d in model_dirs.items() if v == "1" or STATES[state].canary}
    requests = {"1": [3, 1500]} if state == "first-minute" else {}  # from the service's /metrics
    parameters = {"events_url": url, "environment": state, "model_dirs": served,
                  "service_requests": requests, "output_dir": str(tmp_path)}  # fmt: skip

    execute_notebook(NOTEBOOK, tmp_path / "05_monitor.ipynb", parameters)

    record = json.loads((tmp_path / "monitor.json").read_text())
    assert record["breaches"] == []
    for expected in WAITING[state]:
        assert any(line.startswith(expected) for line in record["not_judged"]), (
            expected, record["not_judged"])  # fmt: skip
    versions = record["summary"]["versions"]
    assert sum(row["impressions"] for row in versions.values()) == STATES[state].visits
    if state == "first-minute":  # the error rate the service counted, when it was read
        error_rate = versions["1"]["error_rate"]
        assert (error_rate["successes"], error_rate["trials"]) == (3, 1500)
        assert not any(line.startswith("error rate") for line in record["not_judged"])
    if state == "small-canary":
        assert record["verdict"]["verdict"] == "keep collecting"
        assert 0 < versions["2"]["impressions"] < 300
    else:
        assert record["verdict"] is None
    executed = (tmp_path / "05_monitor.ipynb").read_text()
    assert '"output_type": "error"' not in executed and "Traceback" not in executed


@pytest.fixture
def no_service(monkeypatch: pytest.MonkeyPatch) -> None:
    """Production's service is down: its port is one nothing listens on."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SHOPREC_PORT_PRODUCTION", str(port))


def test_monitor_right_after_a_deploy_says_no_alerts_and_exits_0(
    project: Path, no_service: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["monitor", "--env", "production", "--check"]) == 0

    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("monitor report: ") and out[0].endswith("05_monitor.ipynb")
    assert out[1:] == [
        "  cannot judge yet: no lists served in the window (no traffic yet): nothing to judge "
        "until the service answers /recommendations",
        "no alerts",
    ]
    (report,) = (project / "runs").glob("monitor-*/monitor.json")
    record = json.loads(report.read_text())
    assert record["summary"]["impressions"] == 0 and record["breaches"] == []
    assert record["champion"] is None and record["verdict"] is None


def test_a_failing_cell_is_one_line_naming_notebook_cell_and_error(
    project: Path, no_service: None, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = project / "truth.csv"
    truth.write_text("request_id,ctr\nr1,0.5\n")  # not a simulator's ground truth

    assert main(["monitor", "--env", "production", "--ground-truth", str(truth)]) == 1

    err = capsys.readouterr().err
    assert "Traceback" not in err
    failure, kept = err.splitlines()[-2:]  # after the note that the service's /metrics is down
    assert failure.startswith("shoprec monitor: notebook 05_monitor.ipynb failed in cell ")
    assert failure.endswith("KeyError: 'served_at'")
    kept = Path(kept.removeprefix("the partially executed notebook is kept at "))
    assert kept.is_file() and kept.parent.parent == project / "runs"
