import numpy as np
import pytest

from shoprec.synthetic import EVENT_TYPES, generate_shop


def test_same_seed_gives_same_shop():
    first, second = generate_shop(50, 80, 2_000, seed=3), generate_shop(50, 80, 2_000, seed=3)
    assert first.events.equals(second.events)
    assert first.items.equals(second.items)


def test_other_seed_gives_other_shop():
    first, second = generate_shop(50, 80, 2_000, seed=3), generate_shop(50, 80, 2_000, seed=4)
    assert not first.events.equals(second.events)


def test_tables_have_the_requested_shape_and_columns():
    shop = generate_shop(100, 150, 5_000, seed=1)
    assert list(shop.items.columns) == ["item_id", "title", "category", "price"]
    assert len(shop.items) == 150 and len(shop.users) == 100
    assert abs(len(shop.events) - 5_000) < 500
    assert set(shop.events["event"].astype(str)) == set(EVENT_TYPES)
    assert shop.events["item_id"].between(0, 149).all()
    assert (shop.items["price"] > 0).all()
    assert shop.events["timestamp"].is_monotonic_increasing
    assert shop.tastes.scores(np.arange(100)).shape == (100, 150)


def test_every_purchase_follows_a_cart_of_the_same_item():
    events = generate_shop(100, 150, 5_000, seed=1).events
    carts = events[events["event"] == "add_to_cart"].groupby(["user_id", "item_id"]).size()
    purchases = events[events["event"] == "purchase"].groupby(["user_id", "item_id"]).size()
    assert (purchases <= carts.reindex(purchases.index, fill_value=0)).all()


def test_popularity_has_a_long_tail():
    events = generate_shop(seed=5).events
    counts = events.groupby("item_id").size().sort_values(ascending=False)
    top_fifth_share = counts.head(len(counts) // 5).sum() / counts.sum()
    assert 0.4 < top_fifth_share < 0.9


def test_events_follow_the_true_preferences():
    shop = generate_shop(200, 300, 10_000, seed=2)
    top = shop.true_top_items(np.arange(200), 30)
    liked = np.array(
        [
            item in set(top[user])
            for user, item in zip(shop.events.user_id, shop.events.item_id, strict=True)
        ]
    )
    assert liked.mean() > 5 * (30 / 300)


@pytest.mark.parametrize("sizes", [(0, 10, 10), (10, 0, 10), (10, 10, -1)])
def test_non_positive_sizes_are_refused(sizes):
    with pytest.raises(ValueError, match="must be positive"):
        generate_shop(*sizes)
