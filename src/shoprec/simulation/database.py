"""A small event database made by the simulator without a service (notebook CI, examples).

The smoke shop's co-occurrence model is champion (version "1"); a deliberately poor model (the
popularity model fitted on interactions whose item ids were shuffled) is a canary (version "2")
for 20% of users; halfway through, tastes shift. Same seed, same database, on any machine.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shoprec.artifact import save_model
from shoprec.datasets import load_dataset
from shoprec.events.store import EventStore
from shoprec.models import Recommender, make_model
from shoprec.service.served import load_served_model
from shoprec.simulation.inprocess import ModelRouter, Simulation, ground_truth, to_store_records
from shoprec.simulation.world import World

CHAMPION, CHALLENGER = "1", "2"


@dataclass(frozen=True)
class SimulatedDatabase:
    """Where the generated events, the models that served them and the ground truth are."""

    url: str
    model_dirs: dict[str, Path]
    ground_truth: Path
    drift_at_seconds: float


def shuffled_model(interactions: pd.DataFrame, seed: int) -> Recommender:
    """A deliberately poor model: popularity fitted on interactions with shuffled item ids."""
    items = np.random.default_rng(seed).permutation(interactions["item_id"].to_numpy())
    return make_model("popularity").fit(interactions.assign(item_id=items))


def simulated_database(
    directory: Path,
    profile: str = "smoke",
    *,
    seed: int = 7,
    visits: int = 4_000,
    rate: float = 1.0,
    canary: float = 0.2,
    drift: str | None = "taste-shift",
) -> SimulatedDatabase:
    """Simulate `visits` shoppers into `directory/events.db`; models and ground truth beside it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    data = load_dataset("synthetic", profile)
    models = {
        CHAMPION: make_model("cooccurrence").fit(data.interactions),
        CHALLENGER: shuffled_model(data.interactions, seed),
    }
    model_dirs = {}
    for version, model in models.items():
        model_dirs[version] = directory / "models" / version
        save_model(model, model_dirs[version], {"simulated_version": version})
    served = {
        version: load_served_model(path, None, "production", version)
        for version, path in model_dirs.items()
    }
    router = ModelRouter(served[CHAMPION], served[CHALLENGER], canary, seed=seed)
    drift_at = visits / rate / 2 if drift else None
    simulation = Simulation(
        World(data.shop.tastes), router, seed=seed, rate=rate, drift=drift, drift_at=drift_at
    )
    done = list(simulation.run(visits))
    impressions, feedback = to_store_records(done, "production", seed)
    path = directory / "events.db"
    path.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    store = EventStore(url)
    try:
        store.add_impressions(impressions)
        store.add_feedback(feedback)
    finally:
        store.dispose()
    truth = directory / "ground_truth.csv"
    pd.DataFrame(ground_truth(done)).to_csv(truth, index=False)
    return SimulatedDatabase(url, model_dirs, truth, drift_at or 0.0)
