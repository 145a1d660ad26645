import numpy as np
import pandas as pd
import pytest

from shoprec.interactions import (
    SPLIT_METHODS,
    global_time_split,
    leave_last_n_split,
    split_interactions,
    stratified_split,
    to_interactions,
)


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


@pytest.fixture
def shuffled_log():
    """Uneven users (1 to 17 rows), rows in no particular order, some timestamps tied."""
    rng = np.random.default_rng(7)
    rows = [(user, item) for user in range(1, 18) for item in range(100 + user, 100 + 2 * user)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"]).sample(frac=1.0, random_state=3)
    return frame.assign(
        weight=1.0, timestamp=rng.integers(0, 40, len(frame)), rating=rng.integers(1, 6, len(frame))
    ).reset_index(drop=True)


def recommenders_stratified_split(data, ratio, seed):
    """Microsoft Recommenders 1.2 `python_stratified_split` (filter_by="user", min_rating=1),
    restated from its `_do_stratification`: global legacy seed, keys in row order, default sort."""
    data = data.copy()
    np.random.seed(seed)
    data["random"] = np.random.rand(data.shape[0])
    data = data.sort_values(["user_id", "random"])
    groups = data.groupby("user_id")
    data["count"] = groups["user_id"].transform("count")
    data["rank"] = groups.cumcount() + 1
    splits, previous = [], None
    for threshold in np.cumsum([ratio, 1 - ratio]):
        condition = data["rank"] <= round(threshold * data["count"])
        if previous is not None:
            condition &= data["rank"] > round(previous * data["count"])
        splits.append(data[condition].drop(["rank", "count", "random"], axis=1))
        previous = threshold
    return splits


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


def test_random_is_an_alias_of_stratified(shuffled_log):
    random = split_interactions(shuffled_log, 0.3, method="random", seed=5)
    stratified = split_interactions(shuffled_log, 0.3, method="stratified", seed=5)
    assert random[0].equals(stratified[0]) and random[1].equals(stratified[1])


@pytest.mark.parametrize("seed", [42, 0, 123])
@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.8, 0.3, 0.1])
def test_stratified_split_matches_recommenders_row_for_row(shuffled_log, ratio, seed):
    expected_train, expected_test = recommenders_stratified_split(shuffled_log, ratio, seed)
    train, test = stratified_split(shuffled_log, ratio, seed=seed)
    pd.testing.assert_frame_equal(train, expected_train.reset_index(drop=True))
    pd.testing.assert_frame_equal(test, expected_test.reset_index(drop=True))


@pytest.mark.parametrize("test_ratio", [0.25, 0.2, 0.7, 0.9])
def test_split_interactions_stratified_takes_the_test_share(shuffled_log, test_ratio):
    """test_ratio=0.25 is Recommenders' ratio=0.75; 1 - 0.9 must behave like the typed 0.1."""
    expected = recommenders_stratified_split(shuffled_log, round(1 - test_ratio, 2), seed=42)
    train, test = split_interactions(shuffled_log, test_ratio, method="stratified", seed=42)
    pd.testing.assert_frame_equal(train, expected[0].reset_index(drop=True))
    pd.testing.assert_frame_equal(test, expected[1].reset_index(drop=True))


def test_stratified_split_leaves_numpys_global_random_state_alone(shuffled_log):
    np.random.seed(99)
    expected = np.random.rand(3)
    np.random.seed(99)
    stratified_split(shuffled_log, 0.75, seed=42)
    assert np.array_equal(np.random.rand(3), expected)


def test_stratified_split_rounds_half_to_even():
    counts = {1: 1, 2: 2, 3: 6, 4: 10, 5: 15}
    rows = [(user, item) for user, count in counts.items() for item in range(count)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    train = stratified_split(frame, 0.75)[0].groupby("user_id").size()
    # 0.75 x: 1 -> round(0.75) = 1, 2 -> round(1.5) = 2, 6 -> round(4.5) = 4, 10 -> round(7.5) = 8
    assert train.to_dict() == {1: 1, 2: 2, 3: 4, 4: 8, 5: 11}
    # test share 0.9 of 15 rows: train round(0.1 * 15) = round(1.5) = 2, not round(1.4999...) = 1
    train, _ = split_interactions(frame, 0.9, method="stratified")
    assert train.groupby("user_id").size()[5] == 2


def test_stratified_split_depends_on_row_order(shuffled_log):
    """Keys follow the rows, as in Recommenders: reordered input gives another (valid) split."""
    reordered = shuffled_log.sort_values(["user_id", "item_id"]).reset_index(drop=True)
    assert not stratified_split(shuffled_log)[1].equals(stratified_split(reordered)[1])


@pytest.mark.parametrize("train_ratio", [0, 1, 1.2])
def test_stratified_bad_train_ratio_is_refused(shuffled_log, train_ratio):
    with pytest.raises(ValueError, match="train_ratio must be between 0 and 1"):
        stratified_split(shuffled_log, train_ratio)


def test_global_time_split_cuts_everyone_at_one_time():
    frame = pd.DataFrame(
        {
            "user_id": [1, 1, 1, 2, 2, 3, 3, 3, 3, 4],
            "item_id": [1, 2, 3, 1, 2, 1, 2, 3, 4, 5],
            "timestamp": [1, 5, 9, 2, 8, 3, 4, 8, 10, 6],
        }
    )
    # 10 rows, test_ratio 0.3: the 3rd latest timestamp is 8; both rows at 8 go to test.
    train, test = split_interactions(frame, 0.3, method="global_time")
    assert sorted(test["timestamp"]) == [8, 8, 9, 10] and train["timestamp"].max() < 8
    assert list(zip(test["user_id"], test["item_id"], strict=True)) == [
        (1, 3),
        (2, 2),
        (3, 3),
        (3, 4),
    ]
    train, test = global_time_split(frame, cutoff=6)
    assert sorted(test["timestamp"]) == [6, 8, 8, 9, 10] and len(train) == 5
    assert 4 not in set(train["user_id"])  # a cold-start user, tested all the same


def test_leave_last_n_holds_out_each_users_last_n():
    rows = [
        (user, item, item % 3) for user, count in [(1, 5), (2, 2), (3, 3)] for item in range(count)
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    train, test = split_interactions(frame, method="leave_last_n", n=2)
    # user 1 times 0,1,2,0,1 -> last two by (time, item): items 4 (t=1) and 2 (t=2)
    assert test.groupby("user_id")["item_id"].apply(sorted).to_dict() == {1: [2, 4], 3: [1, 2]}
    assert set(train.loc[train["user_id"] == 2, "item_id"]) == {0, 1}  # two rows stay in train
    one_out = leave_last_n_split(frame)
    assert one_out[1].groupby("user_id").size().to_dict() == {1: 1, 2: 1, 3: 1}


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_leave_last_n_bad_n_is_refused(interactions, n):
    with pytest.raises(ValueError, match="n must be a positive integer"):
        split_interactions(interactions, method="leave_last_n", n=n)


@pytest.mark.parametrize("method", SPLIT_METHODS)
def test_every_split_is_deterministic_and_partitions_the_rows(shuffled_log, method):
    train, test = split_interactions(shuffled_log, 0.25, method=method, seed=11)
    again = split_interactions(shuffled_log, 0.25, method=method, seed=11)
    assert train.equals(again[0]) and test.equals(again[1])
    assert list(train.columns) == list(shuffled_log.columns)
    pairs = pd.concat([train, test])[["user_id", "item_id"]]
    assert not pairs.duplicated().any() and len(pairs) == len(shuffled_log)
    assert len(test) > 0 and len(train) > 0


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
