import math

import pandas as pd
import pytest

from shoprec.metrics import ranking_metrics


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


def test_k_cuts_the_lists(worked_example):
    metrics = ranking_metrics(*worked_example, k=1, n_items=20)
    assert metrics["precision"] == 0 and metrics["recall"] == 0
    assert metrics["coverage"] == pytest.approx(1 / 20)


def test_perfect_ranking_scores_one():
    recs = pd.DataFrame({"user_id": [1, 1], "item_id": [5, 6], "rank": [1, 2]})
    test = pd.DataFrame({"user_id": [1, 1], "item_id": [6, 5]})
    metrics = ranking_metrics(recs, test, k=2, n_items=10)
    assert metrics["precision"] == metrics["recall"] == metrics["ndcg"] == metrics["map"] == 1.0


def test_users_with_fewer_relevant_items_than_k_can_reach_full_ndcg():
    recs = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [5, 6, 7], "rank": [1, 2, 3]})
    test = pd.DataFrame({"user_id": [1], "item_id": [5]})
    assert ranking_metrics(recs, test, k=3, n_items=10)["ndcg"] == pytest.approx(1.0)


def test_duplicate_test_rows_count_once():
    recs = pd.DataFrame({"user_id": [1], "item_id": [5], "rank": [1]})
    test = pd.DataFrame({"user_id": [1, 1], "item_id": [5, 5]})
    assert ranking_metrics(recs, test, k=1, n_items=10)["recall"] == 1.0


@pytest.mark.parametrize("k", [0, -3])
def test_non_positive_k_is_refused(worked_example, k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        ranking_metrics(*worked_example, k=k, n_items=20)
