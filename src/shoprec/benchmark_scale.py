"""The scale benchmark: fit and recommend for every user of a 10-million-event synthetic shop."""

import multiprocessing
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoprec.interactions import to_interactions
from shoprec.models import make_model
from shoprec.synthetic import generate_shop

SCALE_SHOP = {"n_users": 200_000, "n_items": 50_000, "n_events": 10_000_000}
SCALE_MODELS = {
    "cooccurrence": {"similarity": "cooccurrence", "n_neighbours": 100},
    "als": {"factors": 64, "regularization": 20.0, "iterations": 10},
}
INTERACTIONS_FILE = "interactions.npz"


def write_scale_interactions(directory: Path, seed: int = 42) -> dict[str, int]:
    """Generate the scale shop once and store its interactions as plain arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    shop = generate_shop(**SCALE_SHOP, seed=seed)
    interactions = to_interactions(shop.events)
    np.savez(directory / INTERACTIONS_FILE, **{c: interactions[c].to_numpy() for c in interactions})
    return {**SCALE_SHOP, "n_events": len(shop.events), "n_interactions": len(interactions)}


def _fit_and_recommend(path: str, algorithm: str, queue: multiprocessing.Queue) -> None:
    with np.load(path, allow_pickle=False) as stored:
        interactions = pd.DataFrame({name: stored[name] for name in stored.files})
    model = make_model(algorithm, **SCALE_MODELS[algorithm])
    started = time.perf_counter()
    model.fit(interactions)
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    recommendations = model.recommend(model.user_ids_, k=10)
    queue.put(
        {
            "algorithm": algorithm,
            "fit_seconds": fit_seconds,
            "recommend_seconds": time.perf_counter() - started,
            "recommendations": len(recommendations),
            "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def measure(directory: Path, algorithm: str) -> dict[str, Any]:
    """Fit and recommend in a fresh process, so its peak memory is this model's alone."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(
        target=_fit_and_recommend, args=(str(directory / INTERACTIONS_FILE), algorithm, queue)
    )
    child.start()
    result = queue.get()
    child.join()
    return result
