"""The simulated shop: true click rates, position bias, drifts, determinism, the canary split."""

import numpy as np
import pandas as pd
import pytest

from shoprec.artifact import save_model
from shoprec.service.canary import in_canary, user_bucket
from shoprec.service.served import load_served_model
from shoprec.simulation.database import shuffled_model
from shoprec.simulation.inprocess import ModelRouter, Simulation, ground_truth, to_store_records
from shoprec.simulation.shoppers import Served, visit
from shoprec.simulation.world import World, position_bias


@pytest.fixture(scope="module")
def world(smoke_data) -> World:
    return World(smoke_data.shop.tastes)


@pytest.fixture(scope="module")
def served(tmp_path_factory, cooccurrence_model, smoke_split):
    folder = tmp_path_factory.mktemp("models")
    save_model(cooccurrence_model, folder / "good", {})
    save_model(shuffled_model(smoke_split[0], 3), folder / "bad", {})
    return (load_served_model(folder / "good", None, "production", "1"),
            load_served_model(folder / "bad", None, "production", "2"))  # fmt: skip


def test_true_preferences_make_the_best_list_the_most_clicked(world):
    attract = world.attractiveness(np.array([5]))[0]
    best, worst = np.argsort(-attract)[:10], np.argsort(attract)[:10]
    assert world.expected_ctr(5, best) > 3 * world.expected_ctr(5, worst)
    assert np.all(np.diff(position_bias(10)) < 0) and position_bias(3)[0] == 1.0
    reversed_ctr = world.expected_ctr(5, best[::-1])
    assert reversed_ctr < world.expected_ctr(5, best)  # best first is worth more: position bias
    probabilities = world.click_probabilities(5, best)
    assert probabilities[0] / attract[best[0]] == pytest.approx(1.0)
    assert world.click_probabilities(5, np.array([-1, 10**9])).tolist() == [0.0, 0.0]


def test_click_frequency_matches_the_true_probability(world):
    items = np.arange(10)
    rng = np.random.default_rng(0)
    served = Served("a" * 32, "1", items.tolist(), False)
    visits = [visit(world, rng, 3, 0.0, served).events for _ in range(4000)]
    clicked = [any(e["type"] == "click" and e["request_id"] for e in v) for v in visits]
    truth = world.expected_ctr(3, items)
    assert abs(np.mean(clicked) - truth) < 4 * np.sqrt(truth * (1 - truth) / 4000)


def test_carts_and_purchases_follow_clicks_in_time(world):
    rng = np.random.default_rng(1)
    served = Served("b" * 32, "1", list(range(10)), False)
    events = [e for _ in range(500) for e in visit(world, rng, 2, 100.0, served).events
              if e["request_id"]]  # fmt: skip
    kinds = [e["type"] for e in events]
    assert kinds.count("click") > kinds.count("add_to_cart") > kinds.count("purchase") > 0
    assert all(e["at"] > 100.0 for e in events)


@pytest.mark.parametrize("drift", ["taste-shift", "new-items", "popularity-shock"])
def test_drifts_change_the_world_deterministically(world, drift):
    moved = world.drifted(drift, seed=4)
    assert moved.drifts == (drift,)
    assert world.drifted(drift, seed=4).tastes.scores(np.arange(5)).tolist() == (
        moved.tastes.scores(np.arange(5)).tolist()
    )
    before, after = world.attractiveness(np.arange(50)), moved.attractiveness(np.arange(50))
    if drift == "new-items":
        assert moved.n_items == world.n_items + world.n_items // 10
        assert np.allclose(before[:, :0], after[:, :0])
    else:
        assert not np.allclose(before, after)
    with pytest.raises(ValueError, match="unknown drift 'flood'"):
        world.drifted("flood", seed=1)


def test_taste_shift_lowers_the_model_lists_true_ctr(world, served):
    router = ModelRouter(served[0], seed=2)
    users = np.arange(100)
    lists = [router(int(u), 10).items for u in users]
    shifted = world.drifted("taste-shift", seed=2)
    before = np.mean([world.expected_ctr(int(u), lst) for u, lst in zip(users, lists, strict=True)])
    after = np.mean(
        [shifted.expected_ctr(int(u), lst) for u, lst in zip(users, lists, strict=True)]
    )
    assert after < 0.8 * before


def test_canary_split_is_deterministic_and_near_its_fraction():
    users = np.arange(20_000)
    share = np.mean([in_canary(int(u), 0.2, "7") for u in users])
    assert 0.19 < share < 0.21
    assert user_bucket(42, "7") == user_bucket(42, "7") != user_bucket(42, "8")
    assert not in_canary(42, 0.0) and in_canary(42, 1.0)
    with pytest.raises(ValueError, match="canary fraction 1.5"):
        in_canary(1, 1.5)


def test_simulation_is_deterministic_and_records_ground_truth_by_version(world, served):
    def run():
        router = ModelRouter(served[0], served[1], 0.3, seed=5)
        sim = Simulation(world, router, seed=5, rate=2.0, drift="taste-shift", drift_at=100.0)
        visits = list(sim.run(400))
        return visits, sim

    first, sim = run()
    second, _ = run()
    records = to_store_records(first, "production", 5)
    assert records == to_store_records(second, "production", 5)
    assert sim.world.drifts == ("taste-shift",) and sim.clock == pytest.approx(200.0)
    truth = pd.DataFrame(ground_truth(first))
    assert set(truth["model_version"]) == {"1", "2"}
    means = truth.groupby("model_version")["expected_ctr"].mean()
    assert means["1"] > means["2"]  # the shuffled model is the poor one
    impressions, feedback = records
    assert len(impressions) == 400 and {f["event_type"] for f in feedback} == {
        "click", "add_to_cart", "purchase"}  # fmt: skip
    assert len({f["event_id"] for f in feedback}) == len(feedback)
    assert all(len(i["request_id"]) == 32 for i in impressions)


def test_simulation_refuses_bad_options(world, served):
    router = ModelRouter(served[0])
    with pytest.raises(ValueError, match="rate=0"):
        Simulation(world, router, seed=1, rate=0)
    with pytest.raises(ValueError, match="--drift and --at together"):
        Simulation(world, router, seed=1, drift="taste-shift")


def test_the_monitor_rolls_a_bad_canary_back_and_leaves_a_twin_alone(world, served, repo_root):
    from shoprec.monitoring.demo import canary_run
    from shoprec.monitoring.policy import load_monitor_policy

    policy = load_monitor_policy(repo_root / "policy" / "monitor-policy.toml")
    at, _ = canary_run(world, served[0], served[1], seed=9, limit=5_000, policy=policy)
    assert at is not None and at <= 5_000
    from dataclasses import replace

    twin = replace(served[0], model_version="3")  # the same model under another version
    at, visits = canary_run(world, served[0], twin, seed=9, limit=2_000, policy=policy)
    assert at is None and len(visits) == 2_000


@pytest.mark.parametrize("drift", [None, "taste-shift"])
def test_only_a_taste_shift_is_caught_as_taste_drift(drift, repo_root, tmp_path):
    from shoprec.artifact import load_model
    from shoprec.events.store import EventStore
    from shoprec.monitoring.data import read_window
    from shoprec.monitoring.decisions import breaches
    from shoprec.monitoring.policy import load_monitor_policy
    from shoprec.monitoring.report import Catalogue, summarise
    from shoprec.simulation.database import simulated_database
    from shoprec.simulation.inprocess import DEFAULT_START

    policy = load_monitor_policy(repo_root / "policy" / "monitor-policy.toml")
    simulated = simulated_database(tmp_path, drift=drift, canary=0.0, visits=3_000)
    store = EventStore(simulated.url)
    middle = DEFAULT_START + pd.Timedelta(seconds=1_500)
    before = read_window(store, "production", DEFAULT_START, middle, middle + policy.window)
    after = read_window(store, "production", middle, None)
    store.dispose()
    catalogues = {v: Catalogue.of(load_model(p)) for v, p in simulated.model_dirs.items()}
    summary = summarise(after, catalogues, policy, before)
    found = [b.metric for b in breaches(summary, policy)]
    taste = summary["drift"]
    assert min(taste["taste_agreement"]["trials"], taste["taste_agreement_before"]["trials"]) >= 200
    assert ("taste_drift" in found) == (drift == "taste-shift"), (found, taste)
    # item totals barely move under a taste shift: the item-popularity divergence stays quiet
    assert "item_drift_js" not in found


def test_simulate_reports_to_a_person_in_a_few_lines(tmp_path):
    from shoprec.simulation.live import summary_lines

    summary = {"env": "production", "url": "http://127.0.0.1:8603", "shoppers": 1000,
               "requests": 1200, "failed_requests": 0, "events": 3456, "failed_events": 2,
               "seconds": 60.04, "lists_by_version": {"10": 240, "9": 960},
               "expected_ctr_by_version": {"10": 0.2871, "9": 0.31249},
               "drifts": ["taste-shift"], "drift_at": 30.0}  # fmt: skip
    assert summary_lines(summary, tmp_path) == [
        "simulated 1,000 shoppers on production (http://127.0.0.1:8603) for 60.0 s: 1,200 lists "
        "asked, 0 failed; 3,456 feedback events sent, 2 failed",
        "  version 9: 960 lists, true CTR 0.312",
        "  version 10: 240 lists, true CTR 0.287",
        "  drift: taste-shift from 30 s",
        f"ground truth: {tmp_path / 'ground_truth.csv'} (summary: simulation.json)",
    ]
