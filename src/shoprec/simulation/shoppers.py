"""One shopper's visit: a list asked for, what they click, add to cart and buy, and when."""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from shoprec.simulation.world import CART_GIVEN_CLICK, PURCHASE_GIVEN_CART, World

CLICK_DELAY = (2, 60)  # seconds after the list was served
CART_DELAY = (20, 600)  # after the click
PURCHASE_DELAY = (30, 900)  # after the add-to-cart
ORGANIC_PER_VISIT = 0.5  # organic clicks (no request id) per visit, on average


@dataclass(frozen=True)
class Served:
    """A list as the service answered it."""

    request_id: str
    model_version: str
    items: Sequence[int]
    fallback: bool


@dataclass
class Visit:
    """What one shopper did: the list, its true CTR, and their feedback events."""

    user_id: int
    at: float  # seconds since the simulation started
    served: Served
    expected_ctr: float
    events: list[dict] = field(default_factory=list)


def event_id(seed: int, visit: int | str, index: int) -> str:
    """A deterministic event id for a visit (its number, or its list's request id): resending a
    visit's events never stores them twice."""
    digest = hashlib.blake2b(f"{seed}:{visit}:{index}".encode(), digest_size=12).hexdigest()
    return f"sim-{digest}"


def _event(kind: str, user: int, item: int, at: float, request_id: str | None) -> dict:
    return {"type": kind, "user_id": user, "item_id": int(item), "at": at,
            "request_id": request_id}  # fmt: skip


def visit(
    world: World,
    rng: np.random.Generator,
    user_id: int,
    at: float,
    served: Served,
) -> Visit:
    """Simulate the shopper's reaction to `served`: clicks by position, carts, purchases, organic.

    Event times are seconds since the simulation started (`at` is when the list was served).
    """
    items = np.asarray(served.items, dtype=np.int64)
    probabilities = world.click_probabilities(user_id, items)
    expected = float(1.0 - np.prod(1.0 - probabilities))
    clicked = rng.random(len(items)) < probabilities
    events = []
    for item in items[clicked]:
        moment = at + rng.integers(*CLICK_DELAY)
        events.append(_event("click", user_id, item, moment, served.request_id))
        if rng.random() < CART_GIVEN_CLICK:
            moment += rng.integers(*CART_DELAY)
            events.append(_event("add_to_cart", user_id, item, moment, served.request_id))
            if rng.random() < PURCHASE_GIVEN_CART:
                moment += rng.integers(*PURCHASE_DELAY)
                events.append(_event("purchase", user_id, item, moment, served.request_id))
    for _ in range(rng.poisson(ORGANIC_PER_VISIT)):
        item = world.organic_item(rng, user_id)
        moment = at + rng.integers(*CLICK_DELAY)
        events.append(_event("click", user_id, item, moment, None))
        if rng.random() < CART_GIVEN_CLICK:
            events.append(_event("add_to_cart", user_id, item, moment + 60, None))
    return Visit(user_id, at, served, expected, events)


Recommend = Callable[[int, int], Served]
"""Ask for a user's top-k list: (user_id, k) -> Served."""


def pick_user(rng: np.random.Generator, n_users: int, new_user_share: float) -> int:
    """A shopper: a known user, or (with `new_user_share`) one the shop has never seen."""
    if rng.random() < new_user_share:
        return int(n_users + rng.integers(0, 10 * n_users))
    return int(rng.integers(0, n_users))
