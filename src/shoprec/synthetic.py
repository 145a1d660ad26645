# Generated from notebooks/lib/synthetic_shop.ipynb: edit the notebook, not this file.

"""A deterministic synthetic shop: catalogue, users and timestamped events with known tastes."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shoprec.ranking import round_scores, top_k

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
class ShopTastes:
    """The latent tastes behind the events: category affinities, taste factors, popularity."""

    affinity: np.ndarray
    user_factors: np.ndarray
    item_factors: np.ndarray
    item_category: np.ndarray
    log_popularity: np.ndarray

    def scores(self, user_ids: np.ndarray) -> np.ndarray:
        """Each user's preference for every item, shape (len(user_ids), n_items)."""
        users = np.asarray(user_ids)
        taste = self.user_factors[users] @ self.item_factors.T
        taste /= np.sqrt(self.user_factors.shape[1])
        category = (2.0 * np.log(self.affinity[users] + 1e-3))[:, self.item_category]
        return category + taste + self.log_popularity


@dataclass(frozen=True)
class ShopData:
    """A generated shop: tables plus the latent tastes that produced the events."""

    items: pd.DataFrame
    users: pd.DataFrame
    events: pd.DataFrame
    tastes: ShopTastes

    def true_top_items(self, user_ids: np.ndarray, k: int) -> np.ndarray:
        """The k items each user truly prefers most, shape (len(user_ids), k); ties: lower id."""
        return top_k(self.tastes.scores(user_ids), k)[0]


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


def _user_tastes(
    rng: np.random.Generator, n_users: int, item_category: np.ndarray, log_popularity: np.ndarray
) -> ShopTastes:
    n_factors = 8
    affinity = rng.dirichlet(np.full(len(CATEGORIES), 0.3), size=n_users)
    user_factors = rng.normal(0.0, 1.0, size=(n_users, n_factors))
    item_factors = rng.normal(0.0, 1.0, size=(len(item_category), n_factors))
    return ShopTastes(affinity, user_factors, item_factors, item_category, log_popularity)


def _sample_interactions(
    rng: np.random.Generator, tastes: ShopTastes, n_interactions: int, chunk: int = 1_024
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Users, items and preference strengths, computed a chunk of users at a time."""
    n_users = len(tastes.affinity)
    activity = rng.lognormal(0.0, 0.8, size=n_users)
    per_user = rng.multinomial(n_interactions, activity / activity.sum())
    users, items, strengths = [], [], []
    for first in range(0, n_users, chunk):
        block = np.arange(first, min(first + chunk, n_users))
        logits = tastes.scores(block)
        cdf = np.exp(logits - logits.max(axis=1, keepdims=True))
        cdf /= cdf.sum(axis=1, keepdims=True)
        np.cumsum(cdf, axis=1, out=cdf)
        mean_logit = logits.mean(axis=1)
        for row in np.flatnonzero(per_user[block]):
            count = per_user[block[row]]
            picked = cdf[row].searchsorted(rng.random(count) * cdf[row, -1], side="right")
            users.append(np.full(count, block[row], dtype=np.int64))
            items.append(picked)
            strengths.append(logits[row, picked] - mean_logit[row])
    return np.concatenate(users), np.concatenate(items), np.concatenate(strengths)


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
    tastes = _user_tastes(rng, n_users, item_category, log_popularity)
    events_per_interaction = 1.0 + 0.25 + 0.25 * 0.4
    user, item, strength = _sample_interactions(rng, tastes, int(n_events / events_per_interaction))
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
    return ShopData(items, users, events.reset_index(drop=True), tastes)


def oracle_recommendations(
    shop: ShopData, train: pd.DataFrame, user_ids: np.ndarray, k: int, chunk: int = 1_024
) -> pd.DataFrame:
    """Each user's k truly preferred items not in `train`: the best lists any model could give."""
    user_ids = np.asarray(user_ids, dtype=np.int64)
    seen = train.groupby("user_id")["item_id"].agg(list)
    frames = []
    for first in range(0, len(user_ids), chunk):
        block = user_ids[first : first + chunk]
        scores = shop.tastes.scores(block)
        for row, user in enumerate(block):
            scores[row, seen.get(user, [])] = -np.inf
        top, _ = top_k(scores, k)  # ties: the lower item id first
        frames.append(
            pd.DataFrame(
                {
                    "user_id": np.repeat(block, k),
                    "item_id": top.ravel(),
                    "rank": np.tile(np.arange(1, k + 1), len(block)),
                    "score": np.take_along_axis(round_scores(scores), top, axis=1).ravel(),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
