import numpy as np
import pandas as pd
import pytest

from shoprec.models.cooccurrence import CooccurrenceRecommender, time_decayed

DAY = 86_400


@pytest.fixture
def drifting():
    """User 1 liked item 10 sixty days ago and item 20 today; others pair 10-30 and 20-40."""
    return pd.DataFrame(
        {
            "user_id": [1, 1, 2, 2, 3, 3],
            "item_id": [10, 20, 10, 30, 20, 40],
            "weight": [1.0] * 6,
            "timestamp": [0, 60 * DAY, 60 * DAY, 60 * DAY, 60 * DAY, 60 * DAY],
        }
    )


def test_decay_halves_the_weight_every_half_life(drifting):
    decayed = time_decayed(drifting, half_life_days=30)
    assert decayed["weight"].tolist() == [0.25, 1, 1, 1, 1, 1]
    assert drifting["weight"].tolist() == [1.0] * 6  # the input is left alone
    no_weight = time_decayed(drifting.drop(columns="weight"), half_life_days=60)
    assert no_weight["weight"].tolist() == [0.5, 1, 1, 1, 1, 1]


def test_datetime_timestamps_decay_like_unix_seconds(drifting):
    dated = drifting.assign(timestamp=pd.to_datetime(drifting["timestamp"], unit="s", utc=True))
    pd.testing.assert_series_equal(
        time_decayed(dated, 30)["weight"], time_decayed(drifting, 30)["weight"]
    )


def test_decay_ranks_recent_tastes_first(drifting):
    plain = CooccurrenceRecommender(similarity="cooccurrence").fit(drifting)
    decayed = CooccurrenceRecommender(similarity="cooccurrence", time_decay_days=30).fit(drifting)
    plain_recs = plain.recommend([1], k=2)
    decayed_recs = decayed.recommend([1], k=2)
    assert plain_recs["score"].tolist() == [1.0, 1.0]  # old and new tastes tie without decay
    assert decayed_recs["item_id"].tolist() == [40, 30]
    assert decayed_recs["score"].tolist() == [1.0, 0.25]


def test_decay_changes_affinities_not_similarities(smoke_split):
    plain = CooccurrenceRecommender().fit(smoke_split[0])
    decayed = CooccurrenceRecommender(time_decay_days=7).fit(smoke_split[0])
    for name in CooccurrenceRecommender.fitted_arrays:
        assert np.array_equal(getattr(plain, name), getattr(decayed, name))
    assert (decayed.seen_weights_ < plain.seen_weights_).any()
    assert (decayed.seen_weights_ <= plain.seen_weights_).all()
    assert np.array_equal(decayed.seen_indices_, plain.seen_indices_)


def test_ancient_interactions_still_count_as_seen(drifting):
    ancient = drifting.assign(timestamp=drifting["timestamp"] + [-(10**9) * DAY, 0, 0, 0, 0, 0])
    model = CooccurrenceRecommender(time_decay_days=1).fit(ancient)
    assert (model.seen_weights_ > 0).all()
    assert 10 not in set(model.recommend([1], k=5)["item_id"])


def test_decay_needs_timestamps(drifting):
    with pytest.raises(ValueError, match=r"time_decay_days=30 needs a 'timestamp' column"):
        CooccurrenceRecommender(time_decay_days=30).fit(drifting.drop(columns="timestamp"))
    CooccurrenceRecommender().fit(drifting.drop(columns="timestamp"))  # no decay: not needed


def test_timestamps_must_be_times_or_numbers(drifting):
    with pytest.raises(
        ValueError, match=r"column 'timestamp' has dtype \w+; expected datetimes or Unix seconds"
    ):
        CooccurrenceRecommender(time_decay_days=30).fit(drifting.astype({"timestamp": str}))
