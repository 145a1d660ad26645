"""Datasets by name and run profiles: what each notebook loads, at which size."""

import hashlib
from dataclasses import dataclass

import pandas as pd

from shoprec.interactions import to_interactions
from shoprec.synthetic import ShopData, generate_shop

PROFILES: dict[str, dict[str, int]] = {
    "smoke": {"n_users": 200, "n_items": 300, "n_events": 6_000},
    "default": {"n_users": 1_000, "n_items": 2_000, "n_events": 100_000},
}
DATASETS = ("synthetic",)


@dataclass(frozen=True)
class Dataset:
    """A named dataset: catalogue, raw events and the interactions models learn from."""

    name: str
    items: pd.DataFrame
    events: pd.DataFrame
    interactions: pd.DataFrame
    shop: ShopData | None = None


def load_dataset(name: str, profile: str, seed: int = 42) -> Dataset:
    """Load dataset `name` at the size of `profile`, deterministically for a given seed."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {list(PROFILES)}")
    shop = generate_shop(**PROFILES[profile], seed=seed)
    return Dataset(name, shop.items, shop.events, to_interactions(shop.events), shop)


def fingerprint(frame: pd.DataFrame) -> str:
    """A content hash of a table: same rows, columns and values give the same hex digest."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
