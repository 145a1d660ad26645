"""The 10-million-event synthetic shop every scale benchmark uses, generated once and cached."""

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.report import ROOT

SCALE_SHOP = {"n_users": 200_000, "n_items": 50_000, "n_events": 10_000_000}
INTERACTIONS_FILE = "interactions.npz"
SHOP_FILE = "shop.json"


def shop_dir(size: dict[str, int] = SCALE_SHOP, seed: int = 42) -> Path:
    """Where the shop of this size and seed is cached (under runs/, never committed)."""
    name = f"{size['n_users']}x{size['n_items']}x{size['n_events']}-seed{seed}"
    return ROOT / "runs" / "benchmark-shop" / name


def scale_shop(size: dict[str, int] = SCALE_SHOP, seed: int = 42) -> tuple[Path, dict]:
    """The cached shop's folder and description; generated first if absent (minutes at 10M)."""
    directory = shop_dir(size, seed)
    described = directory / SHOP_FILE
    if not described.is_file():
        from shoprec.interactions import to_interactions
        from shoprec.synthetic import generate_shop

        print(f"generating the shop {size} (once; cached in {directory}) ...", flush=True)
        started = time.perf_counter()
        shop = generate_shop(**size, seed=seed)
        interactions = to_interactions(shop.events)
        directory.mkdir(parents=True, exist_ok=True)
        np.savez(directory / INTERACTIONS_FILE,
                 **{name: interactions[name].to_numpy() for name in interactions})  # fmt: skip
        description = {**size, "seed": seed, "n_events": len(shop.events),
                       "n_interactions": len(interactions),
                       "generated_in_seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        described.write_text(json.dumps(description, indent=2) + "\n")
    return directory, json.loads(described.read_text())


def load_interactions(directory: Path) -> pd.DataFrame:
    """The shop's interactions (user_id, item_id, weight, timestamp) as stored."""
    with np.load(directory / INTERACTIONS_FILE, allow_pickle=False) as stored:
        return pd.DataFrame({name: stored[name] for name in stored.files})
