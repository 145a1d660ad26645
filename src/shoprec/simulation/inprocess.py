"""The simulation without a service: shoppers against the real serving code, in this process.

`ModelRouter` answers as a deployed service would (`ServedModel.recommend`, the canary split by
user hash); `Simulation` advances a simulated clock, so the same seed gives the same events and
timestamps on any machine. Serving takes no time on that clock: the lists' latency is 0 (a live
service records each list's real latency; wall-clock time here would differ from run to run).
`to_store_records` turns visits into the event store's rows, so a small event database for
notebook CI, or thousands of A/A and canary runs, need no HTTP.
"""

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson

from shoprec.service.canary import in_canary
from shoprec.service.served import ServedModel
from shoprec.simulation.shoppers import Served, Visit, event_id, pick_user, visit
from shoprec.simulation.world import World

DEFAULT_START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def request_id(seed: int, number: int) -> str:
    """A deterministic request id in the service's format (32 hex digits)."""
    return hashlib.blake2b(f"request:{seed}:{number}".encode(), digest_size=16).hexdigest()


@dataclass
class ModelRouter:
    """Serve from the champion, or from the challenger for the canary's share of users."""

    champion: ServedModel
    challenger: ServedModel | None = None
    fraction: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        self._count = 0

    def arm(self, user_id: int) -> ServedModel:
        """The version that serves `user_id`."""
        if self.challenger is not None and in_canary(user_id, self.fraction, self.challenger.label):
            return self.challenger
        return self.champion

    def __call__(self, user_id: int, k: int) -> Served:
        """The user's list, as the service would answer it."""
        served = self.arm(user_id)
        items, _scores, fallback = served.recommend(user_id, k)
        self._count += 1
        return Served(request_id(self.seed, self._count), served.label, items, fallback)


class Simulation:
    """Shoppers visiting at `rate` per simulated second; `drift` changes the world at `drift_at`."""

    def __init__(
        self,
        world: World,
        recommend: Callable[[int, int], Served],
        *,
        seed: int,
        k: int = 10,
        rate: float = 10.0,
        new_user_share: float = 0.0,
        drift: str | None = None,
        drift_at: float | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate={rate!r}; expected visits per second > 0")
        if (drift is None) != (drift_at is None):
            raise ValueError("give --drift and --at together")
        self.world = world
        self.recommend = recommend
        self.seed, self.k, self.rate = seed, k, rate
        self.new_user_share = new_user_share
        self.drift, self.drift_at = drift, drift_at
        self.rng = np.random.default_rng(seed)
        self.visits = 0
        self.clock = 0.0

    def maybe_drift(self) -> None:
        """Apply the drift once the clock reaches its time."""
        if (
            self.drift is not None
            and self.clock >= self.drift_at
            and self.drift not in (self.world.drifts)
        ):
            self.world = self.world.drifted(self.drift, self.seed)

    def step(self) -> Visit:
        """One shopper's visit."""
        self.maybe_drift()
        user = pick_user(self.rng, self.world.n_users, self.new_user_share)
        served = self.recommend(user, self.k)
        result = visit(self.world, self.rng, user, self.clock, served)
        self.visits += 1
        self.clock += 1.0 / self.rate
        return result

    def run(self, count: int) -> Iterator[Visit]:
        """The next `count` visits."""
        for _ in range(count):
            yield self.step()


def to_store_records(
    visits: list[Visit],
    environment: str,
    seed: int,
    start: datetime = DEFAULT_START,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The event store's impression and feedback rows for `visits` (times from `start`; lists
    served in no time on the simulated clock)."""
    impressions, feedback = [], []
    for visit_record in visits:
        served = visit_record.served
        served_at = start + timedelta(seconds=visit_record.at)
        items = [[int(item), rank, 0.0] for rank, item in enumerate(served.items, start=1)]
        impressions.append(
            {
                "request_id": served.request_id,
                "served_at": served_at,
                "environment": environment,
                "model_version": served.model_version,
                "user_id": visit_record.user_id,
                "fallback": served.fallback,
                "latency_ms": 0.0,
                "items": orjson.dumps(items).decode(),
                "k": len(served.items),
            }
        )
        for index, event in enumerate(visit_record.events):
            occurred = start + timedelta(seconds=float(event["at"]))
            feedback.append(
                {
                    "event_id": event_id(seed, int(served.request_id[:12], 16), index),
                    "event_type": event["type"],
                    "user_id": event["user_id"],
                    "item_id": event["item_id"],
                    "occurred_at": occurred,
                    "received_at": occurred,
                    "environment": environment,
                    "request_id": event["request_id"],
                }
            )
    return impressions, feedback


def ground_truth(visits: list[Visit], start: datetime = DEFAULT_START) -> list[dict[str, Any]]:
    """Each list's true click-through rate, by request id and model version."""
    return [
        {
            "request_id": v.served.request_id,
            "model_version": v.served.model_version,
            "served_at": start + timedelta(seconds=v.at),
            "expected_ctr": v.expected_ctr,
        }
        for v in visits
    ]
