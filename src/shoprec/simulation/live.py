"""`shoprec simulate`: simulated shoppers asking a live local service for lists over HTTP.

Shoppers come from the synthetic shop the served model was trained on (its true tastes); each
visit is `GET /recommendations`, then the visit's clicks, add-to-carts and purchases go to
`POST /events` with the list's request id. Traffic goes only to the environment's 127.0.0.1
URL, and every run is bounded: at most `MAX_DURATION` seconds and `rate x duration` requests.
The ground truth (each list's true CTR, by model version) goes to `runs/simulate-<id>/`.
A visit's events are sent at once, time-stamped as if a shopper's minutes passed in seconds
(`TIME_SCALE`), so a short run's feedback lies within the monitor's attribution window. Event
ids derive from the list's request id, so a second run with the same seed (the same shoppers,
the same drift) stores its own feedback instead of being taken for a resend of the first's.
"""

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

from shoprec.errors import EXIT_BAD_INPUT, ShoprecError
from shoprec.simulation.shoppers import Served, event_id, visit
from shoprec.simulation.world import DRIFTS, World

MAX_DURATION = 3_600.0
MAX_RATE = 200.0
MAX_USERS = 1_000_000
TIME_SCALE = 0.05  # a shopper's minutes pass in seconds: event delays are scaled by this


class SimulationError(ShoprecError):
    """Options the simulator refuses, or a service it cannot reach."""

    exit_code = EXIT_BAD_INPUT


@dataclass(frozen=True)
class LiveOptions:
    """What `shoprec simulate` was asked for."""

    env: str
    users: int
    rate: float
    duration: float
    seed: int
    profile: str = "default"
    drift: str | None = None
    at: float | None = None
    k: int = 10


def check_options(options: LiveOptions) -> None:
    """Refuse options outside the simulator's bounds, naming the option."""
    if not 0 < options.rate <= MAX_RATE:
        raise SimulationError(
            f"--rate {options.rate}: expected 0 < rate <= {MAX_RATE:g} per second"
        )
    if not 0 < options.duration <= MAX_DURATION:
        raise SimulationError(f"--duration {options.duration}: expected 0 < s <= {MAX_DURATION:g}")
    if not 0 < options.users <= MAX_USERS:
        raise SimulationError(f"--users {options.users}: expected 1 to {MAX_USERS}")
    if options.drift is not None and options.drift not in DRIFTS:
        raise SimulationError(f"--drift {options.drift!r}: expected one of {list(DRIFTS)}")
    if (options.drift is None) != (options.at is None):
        raise SimulationError("--drift and --at go together")


def _post_events(client: httpx.Client, headers: dict[str, str], events: list[dict]) -> int:
    if not events:
        return 0
    response = client.post("/events", json=events, headers=headers)
    return 0 if response.status_code == 200 else len(events)


def run_live(
    options: LiveOptions, base_url: str, world: World, output: Path, api_key: str | None = None
) -> dict:
    """Simulate shoppers against the service at `base_url` (127.0.0.1 only); return the summary."""
    check_options(options)
    if not base_url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise SimulationError(f"{base_url}: the simulator only sends traffic to 127.0.0.1")
    rng = np.random.default_rng(options.seed)
    shoppers = rng.choice(world.n_users, size=min(options.users, world.n_users), replace=False)
    headers = {"X-API-Key": api_key} if api_key else {}
    output.mkdir(parents=True, exist_ok=True)
    truth, failed_requests, failed_events, requests, sent = [], 0, 0, 0, 0
    limit = int(options.rate * options.duration)
    started = time.monotonic()
    with httpx.Client(base_url=base_url, timeout=5.0) as client:
        for number in range(limit):
            due = started + number / options.rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            elapsed = time.monotonic() - started
            if elapsed > options.duration:
                break
            if options.drift and elapsed >= options.at and options.drift not in world.drifts:
                world = world.drifted(options.drift, options.seed)
            user = int(shoppers[rng.integers(len(shoppers))])
            requests += 1
            try:
                response = client.get("/recommendations", params={"user_id": user, "k": options.k})
            except httpx.HTTPError:
                failed_requests += 1
                continue
            if response.status_code != 200:
                failed_requests += 1
                continue
            body = response.json()
            listed = [item["item_id"] for item in body["items"]]
            version = str(body["model"]["version"])
            served = Served(body["request_id"], version, listed, body["fallback"])
            now = datetime.now(UTC)
            done = visit(world, rng, user, 0.0, served)
            events = [
                {"type": e["type"], "user_id": e["user_id"], "item_id": e["item_id"],
                 "timestamp": (now + timedelta(seconds=TIME_SCALE * float(e["at"]))).isoformat(),
                 "request_id": e["request_id"],
                 "event_id": event_id(options.seed, served.request_id, index)}
                for index, e in enumerate(done.events)
            ]  # fmt: skip
            sent += len(events)
            try:
                failed_events += _post_events(client, headers, events)
            except httpx.HTTPError:
                failed_events += len(events)
            truth.append(
                {"request_id": served.request_id, "model_version": version,
                 "served_at": now.isoformat(), "expected_ctr": done.expected_ctr}
            )  # fmt: skip
    frame = pd.DataFrame(truth, columns=["request_id", "model_version", "served_at",
                                         "expected_ctr"])  # fmt: skip
    frame.to_csv(output / "ground_truth.csv", index=False)
    by_version = frame.groupby("model_version")["expected_ctr"]
    summary = {
        "env": options.env, "url": base_url, "shoppers": len(shoppers), "requests": requests,
        "failed_requests": failed_requests, "events": sent, "failed_events": failed_events,
        "seconds": round(time.monotonic() - started, 3),
        "lists_by_version": by_version.size().to_dict(),
        "expected_ctr_by_version": by_version.mean().to_dict(),
        "drifts": list(world.drifts), "drift_at": options.at if options.drift else None,
    }  # fmt: skip
    (output / "simulation.json").write_text(json.dumps(summary, indent=2))
    return summary


def summary_lines(summary: dict, output: Path) -> list[str]:
    """`shoprec simulate`'s report for a person: traffic, failures, each version's lists and true
    CTR, the drift, and where the ground truth is."""
    versions = summary["lists_by_version"]
    lines = [
        f"simulated {summary['shoppers']:,} shoppers on {summary['env']} ({summary['url']}) for "
        f"{summary['seconds']:.1f} s: {summary['requests']:,} lists asked, "
        f"{summary['failed_requests']:,} failed; {summary['events']:,} feedback events sent, "
        f"{summary['failed_events']:,} failed",
        *(
            f"  version {version}: {versions[version]:,} lists, true CTR "
            f"{summary['expected_ctr_by_version'][version]:.3f}"
            for version in sorted(versions, key=lambda v: (len(v), v))
        ),
    ]
    if summary["drifts"]:
        lines.append(f"  drift: {', '.join(summary['drifts'])} from {summary['drift_at']:g} s")
    lines.append(f"ground truth: {output / 'ground_truth.csv'} (summary: simulation.json)")
    return lines
