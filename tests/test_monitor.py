"""The monitor's computations: attribution, intervals, tests, drift, alerts and the verdict."""

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from shoprec.events.store import EventStore
from shoprec.monitoring import metrics
from shoprec.monitoring.data import frames, read_window
from shoprec.monitoring.decisions import KEEP_COLLECTING, PROMOTE, ROLL_BACK, breaches, decide
from shoprec.monitoring.policy import MonitorPolicyError, load_monitor_policy
from shoprec.monitoring.report import Catalogue, summarise
from shoprec.monitoring.stats import compare_rates, gini, jensen_shannon, psi, rate_interval

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def policy(repo_root):
    return load_monitor_policy(repo_root / "policy" / "monitor-policy.toml")


def impression(rid: str, user: int, items: list[int], minute: float, version: str = "1",
               fallback: bool = False) -> dict:  # fmt: skip
    return {"request_id": rid, "served_at": T0 + timedelta(minutes=minute),
            "environment": "production", "model_version": version, "user_id": user,
            "fallback": fallback, "latency_ms": 1.0,
            "items": "[" + ",".join(f"[{i},{r},0.0]" for r, i in enumerate(items, 1)) + "]",
            "k": len(items)}  # fmt: skip


def event(eid: str, kind: str, user: int, item: int, minute: float, rid: str | None) -> dict:
    moment = T0 + timedelta(minutes=minute)
    return {"event_id": eid, "event_type": kind, "user_id": user, "item_id": item,
            "occurred_at": moment, "received_at": moment, "environment": "production",
            "request_id": rid}  # fmt: skip


def window_of(impressions: list[dict], feedback: list[dict]):
    return frames(pd.DataFrame(impressions), pd.DataFrame(feedback))


def test_wilson_interval_matches_the_known_values():
    rate = rate_interval(20, 100)
    assert rate.value == 0.2
    assert rate.low == pytest.approx(0.1333, abs=1e-4)
    assert rate.high == pytest.approx(0.2888, abs=1e-4)
    assert rate_interval(0, 50).low == 0.0 and rate_interval(0, 50).high > 0


def test_empty_sample_has_no_rate_and_bad_counts_are_refused():
    empty = rate_interval(0, 0)
    assert empty.trials == 0 and math.isnan(empty.value) and math.isnan(empty.low)
    with pytest.raises(ValueError, match="3 successes out of 2 trials"):
        rate_interval(3, 2)
    with pytest.raises(ValueError, match="successes out of -1"):
        rate_interval(0, -1)


def test_two_proportion_test_sees_a_real_drop_and_not_noise():
    drop = compare_rates(300, 1000, 150, 1000)
    assert drop.difference == pytest.approx(-0.15)
    assert drop.p_worse < 1e-10 and drop.high < 0
    same = compare_rates(300, 1000, 301, 1000)
    assert same.p_worse > 0.4 and same.low < 0 < same.high
    assert math.isnan(compare_rates(0, 0, 5, 10).p_worse)


def test_drift_distances():
    counts = np.array([10.0, 20.0, 30.0, 0.0])
    assert psi(counts, counts) == pytest.approx(0.0)
    assert jensen_shannon(counts, counts) == pytest.approx(0.0)
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert psi(counts, counts[::-1]) > 1.0
    with pytest.raises(ValueError, match="different shapes"):
        psi(counts, counts[:2])
    with pytest.raises(ValueError, match="positive total"):
        jensen_shannon(counts, np.zeros(4))


def test_gini_from_even_to_concentrated():
    assert gini(np.ones(10)) == pytest.approx(0.0)
    assert gini(np.array([0.0] * 9 + [1.0])) == pytest.approx(0.9)
    assert math.isnan(gini(np.zeros(3)))


def test_attribution_by_request_id_and_by_user_item_within_the_window():
    shown = [impression("a" * 32, 1, [10, 11, 12], 0), impression("b" * 32, 2, [10, 13], 5)]
    feedback = [
        event("e1", "click", 1, 11, 1, "a" * 32),  # position 2 of list a
        event("e2", "add_to_cart", 1, 11, 3, None),  # no request id: user 1's list showing 11
        event("e3", "purchase", 2, 13, 50, "b" * 32),
        event("e4", "click", 2, 13, 120, "b" * 32),  # after the 60-minute window
        event("e5", "click", 2, 99, 6, "b" * 32),  # item not in list b
        event("e6", "click", 2, 10, 6, "c" * 32),  # list c is not in the window
        event("e7", "click", 1, 10, -1, "a" * 32),  # before list a was served
        event("e8", "add_to_cart", 3, 10, 2, None),  # user 3 was shown nothing
    ]
    window = window_of(shown, feedback)
    attributed, problems = metrics.attribute(window.impressions, window.feedback,
                                             timedelta(minutes=60))  # fmt: skip
    assert attributed[["event_id", "request_id", "position"]].values.tolist() == [
        ["e1", "a" * 32, 2], ["e2", "a" * 32, 2], ["e3", "b" * 32, 2],
    ]  # fmt: skip
    assert problems == {
        "event after the attribution window": 1,
        "event before its list was served": 1,
        "item not in the list its request_id names": 1,
        "request_id of no list in the window (served before it, or unknown)": 1,
    }
    rates = metrics.rates_by_version(window.impressions, attributed).iloc[0]
    assert (rates["impressions"], rates["ctr"], rates["cart_rate"]) == (2, 0.5, 0.5)
    assert rates["purchase_rate"] == 0.5
    positions = metrics.clicks_by_position(window.impressions, attributed)
    assert positions.set_index("position").loc[2, "clicks"] == 1
    assert positions.set_index("position").loc[1, "lists"] == 2


def test_a_list_hits_when_its_user_acts_on_a_listed_item_within_the_window():
    shown = [impression("a" * 32, 1, [10, 11], 0), impression("b" * 32, 2, [10, 13], 5),
             impression("c" * 32, 3, [10], 5), impression("d" * 32, 4, [10], 5),
             impression("e" * 32, 5, [10], 5), impression("f" * 32, 5, [12], 8)]  # fmt: skip
    feedback = [
        event("e1", "click", 1, 11, 1, "a" * 32),  # from the list
        event("e2", "purchase", 2, 13, 30, None),  # found on their own: still a hit
        event("e3", "click", 3, 10, 70, None),  # after the 60-minute window
        event("e4", "click", 4, 99, 6, None),  # an item the list did not show
        event("e5", "click", 3, 10, 4, None),  # before list c was served
        event("e6", "click", 5, 10, 9, None),  # after user 5's next list (f): not e's hit
        event("e7", "click", 5, 12, 9, None),  # within list f's time: f's hit
    ]
    window = window_of(shown, feedback)
    assert metrics.hit_lists(window.impressions, window.feedback, timedelta(minutes=60)) == {
        "a" * 32, "b" * 32, "f" * 32}  # fmt: skip
    assert metrics.hit_lists(window.impressions, window.feedback.iloc[:0]) == set()


def test_unreadable_lists_and_unknown_event_types_are_counted_not_used():
    shown = [impression("a" * 32, 1, [10], 0), {**impression("b" * 32, 1, [10], 1),
                                                 "items": "not json"}]  # fmt: skip
    feedback = [event("e1", "click", 1, 10, 1, "a" * 32), event("e2", "wishlist", 1, 10, 1, None)]
    window = window_of(shown, feedback)
    assert len(window.impressions) == 1 and len(window.feedback) == 1
    assert window.problems == {
        "impressions with an unreadable item list": 1,
        "feedback events of an unknown type": 1,
    }


def test_empty_window_gives_an_empty_summary_and_no_alert(tmp_path, policy):
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    window = read_window(store, "production")
    store.dispose()
    assert window.impressions.empty and window.feedback.empty
    summary = summarise(window, {}, policy)
    assert summary["impressions"] == 0 and summary["versions"] == {}
    assert summary["drift"]["item_js"] is None
    assert breaches(summary, policy) == []


def test_read_window_selects_environment_and_time(tmp_path):
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    store.add_impressions(
        [
            impression("a" * 32, 1, [1], 0),
            impression("b" * 32, 1, [1], 30),
            {**impression("c" * 32, 1, [1], 31), "environment": "staging"},
        ]
    )
    store.add_feedback([event("e1", "click", 1, 1, 31, "b" * 32)])
    window = read_window(store, "production", T0 + timedelta(minutes=10), T0 + timedelta(hours=1))
    store.dispose()
    assert window.impressions["request_id"].tolist() == ["b" * 32]
    assert window.feedback["event_id"].tolist() == ["e1"]


def test_decision_waits_for_the_minimum_sample_then_rolls_back(policy):
    assert decide((90, 299), (10, 299), policy).verdict == KEEP_COLLECTING
    rolled = decide((300, 1000), (40, 300), policy)
    assert rolled.verdict == ROLL_BACK and "significantly worse" in rolled.reason
    assert decide((300, 1000), (95, 320), policy).verdict == KEEP_COLLECTING
    assert decide((3000, 10000), (620, 2000), policy).verdict == PROMOTE


def test_no_verdict_and_no_ctr_alert_before_any_feedback(policy):
    waiting = decide((0, 2500), (0, 2500), policy)  # many lists, not one click yet
    assert waiting.verdict == KEEP_COLLECTING and "no click in either arm yet" in waiting.reason
    shown = [impression(f"{i:032x}", i % 7, [1, 2, 3], i / 10) for i in range(400)]
    summary = summarise(window_of(shown, []), {}, policy, comparison=window_of(shown, []))
    summary["ctr_change"].update(clicked_before=120, trials_before=400)  # a good window before
    assert summary["feedback_events"] == 0 and summary["versions"]["1"]["ctr"]["high"] < 0.15
    assert breaches(summary, policy) == []  # CTR 0 is no feedback yet, not a bad model
    summary["feedback_events"] = 1  # feedback arrives, and the CTR is judged
    assert {b.metric for b in breaches(summary, policy)} == {"ctr", "ctr_drop"}


def test_summary_alerts_name_metric_value_interval_and_threshold(policy):
    shown = [impression(f"{i:032x}", i % 7, [1, 2, 3], i / 10, fallback=i % 2 == 0)
             for i in range(400)]  # fmt: skip
    window = window_of(shown, [event("e1", "click", 0, 1, 1, f"{0:032x}")])
    catalogue = Catalogue(np.array([1, 2, 3, 4]), np.array([5.0, 3.0, 1.0, 1.0]))
    summary = summarise(window, {"1": catalogue}, policy)
    row = summary["versions"]["1"]
    assert row["coverage"] == 0.75 and row["impressions"] == 400
    described = [b.describe() for b in breaches(summary, policy)]
    assert any(line.startswith("ctr (version 1) = 0.0025 [") and "threshold 0.15" in line
               for line in described)  # fmt: skip
    assert any(line.startswith("fallback_rate (version 1) = 0.5000 [") for line in described)


def test_policy_file_errors_name_the_field(tmp_path, repo_root):
    text = (repo_root / "policy" / "monitor-policy.toml").read_text()
    bad = tmp_path / "monitor-policy.toml"
    bad.write_text(text.replace("alpha = 0.001", "alpha = 2"))
    with pytest.raises(MonitorPolicyError, match=r"\[decision\] alpha = 2; expected"):
        load_monitor_policy(bad)
    bad.write_text(text.replace("min_ctr = 0.15", "min_ctr = 'high'"))
    with pytest.raises(MonitorPolicyError, match=r"\[alerts\] min_ctr = 'high'; expected a number"):
        load_monitor_policy(bad)
    with pytest.raises(MonitorPolicyError, match="cannot read the monitoring policy"):
        load_monitor_policy(tmp_path / "missing.toml")


def test_events_dataset_weights_clicks_carts_and_purchases(tmp_path):
    from shoprec.datasets import load_dataset

    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    store.add_feedback([
        event("e1", "click", 1, 10, 0, None), event("e2", "add_to_cart", 1, 10, 1, None),
        event("e3", "purchase", 1, 10, 2, None), event("e4", "click", 2, 11, 3, None),
        {**event("e5", "click", 3, 12, 4, None), "environment": "staging"},
        {**event("e6", "click", 4, 13, 4, None), "environment": "staging"},
    ])  # fmt: skip
    store.dispose()
    data = load_dataset("events", "default", url=str(tmp_path / "events.db"))
    assert data.interactions[["user_id", "item_id", "weight"]].values.tolist() == [
        [1, 10, 9.0], [2, 11, 1.0]]  # fmt: skip
    assert data.interactions["timestamp"].tolist()[0] == int(
        (T0 + timedelta(minutes=2)).timestamp()
    )
    staging = load_dataset("events", "default", url=str(tmp_path / "events.db"),
                           environment="staging")  # fmt: skip
    assert staging.interactions["user_id"].tolist() == [3, 4]
    with pytest.raises(ValueError, match='environment="x\'; drop"; expected a name'):
        load_dataset("events", "default", url=str(tmp_path / "events.db"), environment="x'; drop")
    with pytest.raises(Exception, match="no data rows"):
        load_dataset("events", "default", url=str(tmp_path / "events.db"), environment="test")


def test_drift_needs_enough_events(policy):
    summary = {"versions": {}, "feedback_events": 999, "drift": {"item_js": 0.9}}
    assert breaches(summary, policy) == []
    summary["feedback_events"] = 1000
    assert [b.metric for b in breaches(summary, policy)] == ["item_drift_js"]


def test_taste_agreement_counts_known_users_own_choices_in_the_models_top_n(popularity_model):
    model = popularity_model
    top = model.recommend([int(model.user_ids_[0])], k=3, exclude_seen=False)["item_id"].tolist()
    user, stranger = int(model.user_ids_[0]), int(model.user_ids_.max()) + 1
    outside = int(next(i for i in model.item_ids_ if i not in top))
    feedback = pd.DataFrame([
        event("e1", "click", user, top[0], 1, None),
        event("e2", "add_to_cart", user, top[0], 2, None),  # the same choice again
        event("e3", "click", user, outside, 3, None),
        event("e4", "click", user, top[1], 4, "f" * 32),  # from a served list: not organic
        event("e5", "click", stranger, top[0], 5, None),  # a user the model never saw
    ])  # fmt: skip
    assert metrics.organic_choices(feedback, model.user_ids_).values.tolist() == sorted(
        [[user, top[0]], [user, outside]]
    )
    assert metrics.taste_agreement(feedback, model, 3) == (1, 2)
    assert metrics.taste_agreement(feedback.iloc[3:], model, 3) == (0, 0)


def taste_summary(before: tuple[int, int], now: tuple[int, int]) -> dict:
    def rate(pair):
        return rate_interval(*pair).as_dict()

    return {"versions": {}, "feedback_events": 0,
            "drift": {"taste_top_n": 100, "taste_agreement": rate(now),
                      "taste_agreement_before": rate(before)}}  # fmt: skip


def test_taste_drift_needs_a_significant_large_drop_on_enough_choices(policy):
    (found,) = breaches(taste_summary((640, 800), (440, 800)), policy)
    assert found.metric == "taste_drift" and found.value == pytest.approx(0.3125)
    assert found.low < found.value < found.high and found.threshold == 0.2
    assert found.describe().startswith("taste_drift (top 100 of the champion) = 0.3125 [")
    assert breaches(taste_summary((640, 800), (600, 800)), policy) == []  # 6%: below threshold
    assert breaches(taste_summary((80, 100), (50, 100)), policy) == []  # too few choices
    assert breaches(taste_summary((640, 800), (0, 0)), policy) == []  # no sample now
    no_comparison = taste_summary((640, 800), (440, 800))
    no_comparison["drift"]["taste_agreement_before"] = None
    assert breaches(no_comparison, policy) == []
