import math

import numpy as np
import pandas as pd
import pytest

from shoprec.metrics import ALL_METRIC_NAMES, METRIC_NAMES, rank_recommendations, ranking_metrics


@pytest.fixture
def worked_example():
    recommendations = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 2],
            "item_id": [10, 11, 12, 10, 13, 14],
            "rank": [1, 2, 3, 1, 2, 3],
        }
    )
    test = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [11, 15, 14, 10]})
    return recommendations, test


def test_hand_worked_example(worked_example):
    metrics = ranking_metrics(*worked_example, k=3, n_items=20)
    log3 = math.log2(3)
    assert metrics["precision"] == pytest.approx((1 / 3 + 1 / 3) / 3)
    assert metrics["recall"] == pytest.approx((1 / 2 + 1) / 3)
    assert metrics["map"] == pytest.approx((0.5 / 2 + (1 / 3) / 1) / 3)
    assert metrics["ndcg"] == pytest.approx(((1 / log3) / (1 + 1 / log3) + 0.5) / 3)
    assert metrics["coverage"] == pytest.approx(5 / 20)


def test_default_keys_are_unchanged_and_all_come_in_order(worked_example):
    assert tuple(ranking_metrics(*worked_example, k=3, n_items=20)) == METRIC_NAMES
    train = pd.DataFrame({"user_id": [9], "item_id": [10]})
    every = ranking_metrics(*worked_example, k=3, n_items=20, train=train, metrics=ALL_METRIC_NAMES)
    assert tuple(every) == ALL_METRIC_NAMES
    picked = ranking_metrics(*worked_example, k=3, n_items=20, metrics=["mrr", "precision"])
    assert tuple(picked) == ("precision", "mrr")


def test_user_without_recommendations_counts_as_zero_everywhere(worked_example):
    """User 3 is in test but got no list: every per-user metric averages over 3 users."""
    metrics = ranking_metrics(*worked_example, k=3, n_items=20, metrics=ALL_METRIC_NAMES[:-1])
    assert metrics["hit_rate"] == pytest.approx(2 / 3)
    assert metrics["mrr"] == pytest.approx((1 / 2 + 1 / 3) / 3)
    assert metrics["map_at_k"] == pytest.approx((0.5 / 2 + (1 / 3) / 1) / 3)


def test_map_divides_by_all_relevant_items_and_map_at_k_by_at_most_k():
    """User 1: 5 relevant, hits at ranks 1 and 3 of 3; user 2: 1 relevant, hit at rank 2."""
    recs = pd.DataFrame(
        {"user_id": [1, 1, 1, 2, 2, 2], "item_id": [1, 7, 2, 8, 9, 6], "rank": [1, 2, 3, 1, 2, 3]}
    )
    test = pd.DataFrame({"user_id": [1, 1, 1, 1, 1, 2], "item_id": [1, 2, 3, 4, 5, 9]})
    metrics = ranking_metrics(recs, test, k=3, n_items=10, metrics=ALL_METRIC_NAMES[:-1])
    average_precision_sum = 1 / 1 + 2 / 3
    assert metrics["map"] == pytest.approx((average_precision_sum / 5 + 0.5 / 1) / 2)  # 0.4167
    assert metrics["map_at_k"] == pytest.approx((average_precision_sum / 3 + 0.5 / 1) / 2)
    assert round(metrics["map"], 4) == 0.4167 and round(metrics["map_at_k"], 4) == 0.5278
    idcg_user_1 = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    ndcg = ((1 + 1 / math.log2(4)) / idcg_user_1 + 1 / math.log2(3)) / 2
    assert metrics["ndcg"] == pytest.approx(ndcg)
    assert metrics["precision"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert metrics["recall"] == pytest.approx((2 / 5 + 1) / 2)
    assert metrics["hit_rate"] == 1.0
    assert metrics["mrr"] == pytest.approx((1 + 1 / 2) / 2)


def test_fewer_relevant_items_than_k_map_and_map_at_k_agree():
    recs = pd.DataFrame({"user_id": [1] * 4, "item_id": [5, 6, 7, 8], "rank": [1, 2, 3, 4]})
    test = pd.DataFrame({"user_id": [1, 1], "item_id": [6, 8]})
    metrics = ranking_metrics(recs, test, k=4, n_items=10, metrics=["map", "map_at_k", "recall"])
    assert metrics["map"] == metrics["map_at_k"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert metrics["recall"] == 1.0


def test_k_cuts_the_lists(worked_example):
    metrics = ranking_metrics(*worked_example, k=1, n_items=20)
    assert metrics["precision"] == 0 and metrics["recall"] == 0
    assert metrics["coverage"] == pytest.approx(1 / 20)


def test_perfect_ranking_scores_one():
    recs = pd.DataFrame({"user_id": [1, 1], "item_id": [5, 6], "rank": [1, 2]})
    test = pd.DataFrame({"user_id": [1, 1], "item_id": [6, 5]})
    metrics = ranking_metrics(recs, test, k=2, n_items=10, metrics=ALL_METRIC_NAMES[:-2])
    assert set(metrics.values()) == {1.0}


def test_users_with_fewer_relevant_items_than_k_can_reach_full_ndcg():
    recs = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [5, 6, 7], "rank": [1, 2, 3]})
    test = pd.DataFrame({"user_id": [1], "item_id": [5]})
    assert ranking_metrics(recs, test, k=3, n_items=10)["ndcg"] == pytest.approx(1.0)


def test_duplicate_test_rows_count_once():
    recs = pd.DataFrame({"user_id": [1], "item_id": [5], "rank": [1]})
    test = pd.DataFrame({"user_id": [1, 1], "item_id": [5, 5]})
    assert ranking_metrics(recs, test, k=1, n_items=10)["recall"] == 1.0


def test_tied_scores_break_by_item_id_whatever_the_row_order():
    scored = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [30, 40, 20], "score": [0.9, 0.5, 0.9]})
    for order in ([0, 1, 2], [2, 1, 0], [1, 2, 0]):
        ranked = rank_recommendations(scored.iloc[order], k=2)
        assert ranked[["item_id", "rank"]].to_dict("list") == {"item_id": [20, 30], "rank": [1, 2]}
    test = pd.DataFrame({"user_id": [1], "item_id": [30]})
    metrics = ranking_metrics(scored, test, k=1, n_items=50, metrics=["precision", "mrr"])
    assert metrics == {"precision": 0.0, "mrr": 0.0}  # 20 wins the tie, so 30 is cut at k=1
    assert ranking_metrics(scored, test, k=2, n_items=50, metrics=["mrr"]) == {"mrr": 0.5}


def test_tied_ranks_break_by_score_then_item_id_and_gaps_are_read_by_position():
    recs = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 1],
            "item_id": [7, 3, 5, 9],
            "rank": [1, 1, 1, 8],
            "score": [0.2, 0.2, 0.7, 0.1],
        }
    )
    ranked = rank_recommendations(recs)
    assert ranked[["item_id", "rank"]].to_dict("list") == {
        "item_id": [5, 3, 7, 9],
        "rank": [1, 2, 3, 4],
    }
    test = pd.DataFrame({"user_id": [1], "item_id": [9]})
    assert ranking_metrics(recs, test, k=4, n_items=10, metrics=["mrr"]) == {"mrr": 0.25}


def test_repeated_recommendation_counts_once_at_its_best_position():
    recs = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [5, 5, 6], "rank": [1, 3, 2]})
    test = pd.DataFrame({"user_id": [1], "item_id": [6]})
    assert ranking_metrics(recs, test, k=2, n_items=10, metrics=["mrr", "precision"]) == {
        "precision": 0.5,
        "mrr": 0.5,
    }


def test_recommendations_need_a_rank_or_a_score():
    recs = pd.DataFrame({"user_id": [1], "item_id": [5]})
    with pytest.raises(ValueError, match="need a rank or a score"):
        ranking_metrics(recs, recs, k=1, n_items=10)


def test_novelty_is_mean_self_information_in_train():
    train = pd.DataFrame({"user_id": [1, 2, 3, 4, 1, 2], "item_id": [1, 1, 1, 1, 2, 3]})
    recs = pd.DataFrame(
        {"user_id": [5, 5, 6, 6], "item_id": [1, 3, 1, 99], "rank": [1, 2, 1, 2]}
    )  # item 99 was never seen in train: left out of the mean
    test = pd.DataFrame({"user_id": [5], "item_id": [3]})
    novelty = ranking_metrics(recs, test, k=2, n_items=100, train=train, metrics=["novelty"])
    expected = (-math.log2(4 / 6) - math.log2(1 / 6) - math.log2(4 / 6)) / 3
    assert novelty["novelty"] == pytest.approx(expected)


def test_novelty_needs_train(worked_example):
    with pytest.raises(ValueError, match="novelty needs the train interactions"):
        ranking_metrics(*worked_example, k=3, n_items=20, metrics=["novelty"])


def test_unknown_metric_is_refused(worked_example):
    with pytest.raises(ValueError, match=r"unknown metrics \['auc'\]"):
        ranking_metrics(*worked_example, k=3, n_items=20, metrics=["auc", "map"])


def test_empty_test_is_refused(worked_example):
    with pytest.raises(ValueError, match="test: no interactions"):
        ranking_metrics(worked_example[0], worked_example[1].iloc[:0], k=3, n_items=20)


@pytest.mark.parametrize("k", [0, -3, 2.5])
def test_non_positive_k_is_refused(worked_example, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ranking_metrics(*worked_example, k=k, n_items=20)


def reference_metrics(recs, test, k):
    """The python_evaluation formulas of Microsoft Recommenders, one user at a time, for lists
    with distinct scores, when every test user has recommendations."""
    sums = dict.fromkeys(("precision", "recall", "ndcg", "map", "map_at_k"), 0.0)
    users = sorted(set(test["user_id"]))
    for user in users:
        relevant = set(test.loc[test["user_id"] == user, "item_id"])
        mine = recs[recs["user_id"] == user].sort_values("score", ascending=False)
        top = list(mine["item_id"])[:k]
        hit_ranks = [rank for rank, item in enumerate(top, start=1) if item in relevant]
        precisions = [nth / rank for nth, rank in enumerate(hit_ranks, start=1)]
        ideal = sum(1 / math.log(1 + rank) for rank in range(1, min(len(relevant), k) + 1))
        sums["precision"] += len(hit_ranks) / k
        sums["recall"] += len(hit_ranks) / len(relevant)
        sums["ndcg"] += sum(1 / math.log(1 + rank) for rank in hit_ranks) / ideal
        sums["map"] += sum(precisions) / len(relevant)
        sums["map_at_k"] += sum(precisions) / min(len(relevant), k)
    return {name: total / len(users) for name, total in sums.items()}


@pytest.mark.parametrize("seed", range(5))
def test_matches_the_reference_formulas_on_random_lists(seed):
    rng = np.random.default_rng(seed)
    users, items = np.arange(30), np.arange(40)
    test = pd.DataFrame(
        [(u, i) for u in users for i in rng.choice(items, rng.integers(1, 15), replace=False)],
        columns=["user_id", "item_id"],
    )
    recs = pd.DataFrame(
        [(u, i, s) for u in users for i, s in zip(items, rng.permutation(len(items)), strict=True)],
        columns=["user_id", "item_id", "score"],
    )
    names = ("precision", "recall", "ndcg", "map", "map_at_k")
    for k in (1, 5, 10):
        expected = reference_metrics(recs, test, k)
        actual = ranking_metrics(recs, test, k=k, n_items=len(items), metrics=names)
        assert actual == pytest.approx(expected, rel=1e-12)
