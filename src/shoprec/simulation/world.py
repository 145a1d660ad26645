"""The simulated world: shoppers' true tastes, how they click, and how the world drifts.

A shopper shown a list examines position p (1-based) with probability `position_bias(p)` and
clicks an examined item with its attractiveness: the logistic of the shopper's true preference
for it, standardised over the catalogue. So a list's true click-through rate (at least one
click) is known exactly: `1 - prod(1 - bias(p) * attractiveness)`. Add-to-cart follows a click
with `CART_GIVEN_CLICK`, purchase follows a cart with `PURCHASE_GIVEN_CART`. Besides the lists
they are shown, shoppers find items on their own (search, browsing): those organic clicks
follow the same tastes and carry no request id, so a retrain on events learns today's tastes.
"""

from dataclasses import dataclass, replace

import numpy as np

from shoprec.synthetic import ShopTastes

ATTRACT_OFFSET = -4.0
ATTRACT_SLOPE = 1.2
POSITION_DECAY = 0.7  # examination probability 1 / p ** POSITION_DECAY
CART_GIVEN_CLICK = 0.3
PURCHASE_GIVEN_CART = 0.4
DRIFTS = ("taste-shift", "new-items", "popularity-shock")
TASTE_SHIFT_SHARE = 0.6  # users whose category affinities move to other categories
NEW_ITEMS_SHARE = 0.1  # new items, as a share of the catalogue
POPULARITY_SHOCK_SHARE = 0.05  # items whose popularity jumps
POPULARITY_SHOCK_LOG = 3.0


def position_bias(k: int) -> np.ndarray:
    """The probability a shopper examines each of positions 1..k."""
    return 1.0 / np.arange(1, k + 1) ** POSITION_DECAY


@dataclass(frozen=True)
class World:
    """Shoppers' tastes now, and the drifts applied so far."""

    tastes: ShopTastes
    drifts: tuple[str, ...] = ()

    @property
    def n_items(self) -> int:
        """Items that exist (new items included)."""
        return len(self.tastes.item_category)

    @property
    def n_users(self) -> int:
        """Shoppers."""
        return len(self.tastes.affinity)

    def taste_of(self, user_ids: np.ndarray) -> np.ndarray:
        """Whose tastes each user has: a shopper the shop never saw shares an existing one's."""
        return np.asarray(user_ids, dtype=np.int64) % self.n_users

    def attractiveness(self, user_ids: np.ndarray) -> np.ndarray:
        """Each user's click probability for every item once examined, (len(user_ids), n_items)."""
        scores = self.tastes.scores(self.taste_of(user_ids))
        z = (scores - scores.mean(axis=1, keepdims=True)) / scores.std(axis=1, keepdims=True)
        return 1.0 / (1.0 + np.exp(-(ATTRACT_OFFSET + ATTRACT_SLOPE * z)))

    def click_probabilities(self, user_id: int, items: np.ndarray) -> np.ndarray:
        """Probability of a click at each position of the list `items` (unknown ids: 0)."""
        items = np.asarray(items, dtype=np.int64)
        exists = (items >= 0) & (items < self.n_items)
        attract = np.zeros(len(items))
        attract[exists] = self.attractiveness(np.array([user_id]))[0, items[exists]]
        return position_bias(len(items)) * attract

    def expected_ctr(self, user_id: int, items: np.ndarray) -> float:
        """The list's true click-through rate: the probability of at least one click."""
        return float(1.0 - np.prod(1.0 - self.click_probabilities(user_id, items)))

    def organic_item(self, rng: np.random.Generator, user_id: int) -> int:
        """An item the user finds on their own, drawn from their tastes."""
        logits = self.tastes.scores(self.taste_of(np.array([user_id])))[0]
        weights = np.exp(logits - logits.max())
        return int(np.searchsorted(np.cumsum(weights), rng.random() * weights.sum(), "right"))

    def drifted(self, drift: str, seed: int) -> "World":
        """This world after `drift` (one of DRIFTS), deterministically for `seed`."""
        if drift not in DRIFTS:
            raise ValueError(f"unknown drift {drift!r}; expected one of {list(DRIFTS)}")
        rng = np.random.default_rng(seed)
        tastes = self.tastes
        if drift == "taste-shift":
            movers = rng.random(self.n_users) < TASTE_SHIFT_SHARE
            n_categories = tastes.affinity.shape[1]
            affinity = tastes.affinity.copy()
            affinity[movers] = np.roll(affinity[movers], n_categories // 2, axis=1)
            factors = tastes.user_factors.copy()
            factors[movers] = -factors[movers]
            tastes = replace(tastes, affinity=affinity, user_factors=factors)
        elif drift == "new-items":
            count = max(1, int(NEW_ITEMS_SHARE * self.n_items))
            n_factors = tastes.item_factors.shape[1]
            tastes = replace(
                tastes,
                item_factors=np.vstack([tastes.item_factors, rng.normal(size=(count, n_factors))]),
                item_category=np.concatenate(
                    [tastes.item_category, rng.choice(tastes.affinity.shape[1], size=count)]
                ),
                log_popularity=np.concatenate(
                    [tastes.log_popularity, np.full(count, np.quantile(tastes.log_popularity, 0.9))]
                ),
            )
        else:
            count = max(1, int(POPULARITY_SHOCK_SHARE * self.n_items))
            shocked = rng.choice(self.n_items, size=count, replace=False)
            log_popularity = tastes.log_popularity.copy()
            log_popularity[shocked] += POPULARITY_SHOCK_LOG
            tastes = replace(tastes, log_popularity=log_popularity)
        return World(tastes, (*self.drifts, drift))
