import pandas as pd
import pytest

from shoprec.interactions import split_interactions, to_interactions


def events(*rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "event", "timestamp"])


def test_events_are_weighted_and_summed_per_user_item():
    result = to_interactions(
        events(
            (1, 10, "view", 5),
            (1, 10, "add_to_cart", 7),
            (1, 10, "purchase", 9),
            (2, 10, "view", 1),
        )
    )
    assert result.to_dict("records") == [
        {"user_id": 1, "item_id": 10, "weight": 9.0, "timestamp": 9},
        {"user_id": 2, "item_id": 10, "weight": 1.0, "timestamp": 1},
    ]


def test_unknown_event_type_is_named():
    with pytest.raises(ValueError, match=r"unknown event types \['wishlist'\]"):
        to_interactions(events((1, 10, "wishlist", 5)))


@pytest.fixture
def interactions():
    rows = [(user, item, 1.0, 100 * user + item) for user in range(1, 6) for item in range(10)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "weight", "timestamp"])


def test_chronological_split_holds_out_each_users_latest(interactions):
    train, test = split_interactions(interactions, 0.2, method="chronological")
    assert len(test) == 10 and len(train) == 40
    assert (test.groupby("user_id")["item_id"].apply(set) == {8, 9}).all()


def test_random_split_is_deterministic_and_per_user(interactions):
    first = split_interactions(interactions, 0.3, method="random", seed=1)
    second = split_interactions(interactions, 0.3, method="random", seed=1)
    other = split_interactions(interactions, 0.3, method="random", seed=2)
    assert first[1].equals(second[1])
    assert not first[1].equals(other[1])
    assert (first[1].groupby("user_id").size() == 3).all()


def test_single_interaction_users_stay_in_train(interactions):
    lonely = pd.DataFrame([{"user_id": 99, "item_id": 1, "weight": 1.0, "timestamp": 0}])
    train, test = split_interactions(pd.concat([interactions, lonely]), 0.2)
    assert 99 in set(train["user_id"]) and 99 not in set(test["user_id"])


@pytest.mark.parametrize("ratio", [0, 1, -0.1, 1.5])
def test_bad_ratio_is_refused(interactions, ratio):
    with pytest.raises(ValueError, match="test_ratio must be between 0 and 1"):
        split_interactions(interactions, ratio)


def test_bad_method_is_refused(interactions):
    with pytest.raises(ValueError, match="method must be one of"):
        split_interactions(interactions, 0.2, method="by-moon-phase")
