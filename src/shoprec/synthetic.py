# Generated from notebooks/lib/synthetic_shop.ipynb: edit the notebook, not this file.

"""A deterministic synthetic shop: catalogue, users and timestamped events with known tastes."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

CATEGORIES = (
    "Electronics", "Books", "Home", "Garden", "Toys", "Sports",
    "Beauty", "Fashion", "Grocery", "Music", "Pets", "Office",
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Compact", "Deluxe", "Eco", "Essential", "Premium",
    "Smart", "Sturdy", "Travel", "Vintage", "Wireless", "Everyday",
)  # fmt: skip
EVENT_TYPES = ("view", "add_to_cart", "purchase")


@dataclass(frozen=True)
class ShopData:
    """A generated shop: tables plus the latent tastes that produced the events."""

    items: pd.DataFrame
    users: pd.DataFrame
    events: pd.DataFrame
    preferences: np.ndarray

    def true_top_items(self, user_ids: np.ndarray, k: int) -> np.ndarray:
        """The k items each user truly prefers most, as an array of shape (len(user_ids), k)."""
        scores = self.preferences[np.asarray(user_ids)]
        return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def _item_catalogue(rng: np.random.Generator, n_items: int) -> tuple[pd.DataFrame, np.ndarray]:
    category_share = rng.dirichlet(np.full(len(CATEGORIES), 2.0))
    category = rng.choice(len(CATEGORIES), size=n_items, p=category_share)
    popularity = rng.pareto(1.5, size=n_items) + 1.0
    base_price = np.exp(rng.normal(3.0, 0.6, size=len(CATEGORIES)))
    price = np.round(base_price[category] * np.exp(rng.normal(0.0, 0.5, size=n_items)), 2)
    adjective = rng.choice(len(ADJECTIVES), size=n_items)
    titles = [
        f"{ADJECTIVES[a]} {CATEGORIES[c].lower()} item {i}"
        for i, (a, c) in enumerate(zip(adjective, category, strict=True))
    ]
    items = pd.DataFrame(
        {
            "item_id": np.arange(n_items, dtype=np.int64),
            "title": titles,
            "category": np.asarray(CATEGORIES)[category],
            "price": price,
        }
    )
    return items, 0.8 * np.log(popularity)


def _user_preferences(
    rng: np.random.Generator, n_users: int, item_category: np.ndarray, log_popularity: np.ndarray
) -> np.ndarray:
    n_factors = 8
    affinity = rng.dirichlet(np.full(len(CATEGORIES), 0.3), size=n_users)
    user_factors = rng.normal(0.0, 1.0, size=(n_users, n_factors))
    item_factors = rng.normal(0.0, 1.0, size=(len(item_category), n_factors))
    taste = user_factors @ item_factors.T / np.sqrt(n_factors)
    return 2.0 * np.log(affinity[:, item_category] + 1e-3) + taste + log_popularity


def _sample_interactions(
    rng: np.random.Generator, preferences: np.ndarray, n_interactions: int
) -> tuple[np.ndarray, np.ndarray]:
    n_users = preferences.shape[0]
    activity = rng.lognormal(0.0, 0.8, size=n_users)
    per_user = rng.multinomial(n_interactions, activity / activity.sum())
    users, items = [], []
    for user, count in enumerate(per_user):
        if count == 0:
            continue
        logits = preferences[user]
        probs = np.exp(logits - logits.max())
        users.append(np.full(count, user, dtype=np.int64))
        items.append(rng.choice(len(logits), size=count, p=probs / probs.sum()))
    return np.concatenate(users), np.concatenate(items)


def _timestamps(rng: np.random.Generator, n: int, start: str, days: int) -> np.ndarray:
    weekday_weight = np.array([1.0, 0.95, 0.95, 1.0, 1.1, 1.4, 1.3])
    day_start = pd.Timestamp(start) + pd.to_timedelta(np.arange(days), unit="D")
    day_weight = weekday_weight[day_start.day_of_week] * np.linspace(1.0, 1.3, days)
    day = rng.choice(days, size=n, p=day_weight / day_weight.sum())
    hour = rng.normal(19.0, 4.0, size=n).clip(0, 23.99)
    seconds = (day * 86_400 + hour * 3_600).astype(np.int64)
    return (pd.Timestamp(start).value // 10**9 + seconds).astype(np.int64)


def generate_shop(
    n_users: int = 1_000,
    n_items: int = 2_000,
    n_events: int = 100_000,
    *,
    seed: int = 42,
    start: str = "2026-01-01",
    days: int = 90,
) -> ShopData:
    """Generate a shop whose events follow each user's latent preferences, deterministically."""
    if min(n_users, n_items, n_events) <= 0:
        raise ValueError(
            f"n_users, n_items and n_events must be positive, got {n_users}, {n_items}, {n_events}"
        )
    rng = np.random.default_rng(seed)
    items, log_popularity = _item_catalogue(rng, n_items)
    item_category = pd.Categorical(items["category"], categories=CATEGORIES).codes
    preferences = _user_preferences(rng, n_users, item_category, log_popularity)
    events_per_interaction = 1.0 + 0.25 + 0.25 * 0.4
    user, item = _sample_interactions(rng, preferences, int(n_events / events_per_interaction))
    strength = preferences[user, item] - preferences.mean(axis=1)[user]
    cart_probability = 0.5 / (1.0 + np.exp(-(strength - strength.mean())))
    cart = rng.random(len(user)) < cart_probability
    purchase = cart & (rng.random(len(user)) < 0.4)
    viewed_at = _timestamps(rng, len(user), start, days)
    carted_at = viewed_at + rng.integers(30, 1_800, size=len(user))
    bought_at = carted_at + rng.integers(60, 3_600, size=len(user))
    events = pd.DataFrame(
        {
            "user_id": np.concatenate([user, user[cart], user[purchase]]),
            "item_id": np.concatenate([item, item[cart], item[purchase]]).astype(np.int64),
            "event": pd.Categorical(
                np.repeat(EVENT_TYPES, [len(user), cart.sum(), purchase.sum()]),
                categories=EVENT_TYPES,
            ),
            "timestamp": np.concatenate([viewed_at, carted_at[cart], bought_at[purchase]]),
        }
    )
    events = events.sort_values(["timestamp", "user_id", "item_id"], kind="stable")
    users = pd.DataFrame(
        {
            "user_id": np.arange(n_users, dtype=np.int64),
            "signup_date": pd.Timestamp(start)
            - pd.to_timedelta(rng.integers(0, 720, size=n_users), unit="D"),
        }
    )
    return ShopData(items, users, events.reset_index(drop=True), preferences)
