"""`make monitor-demo`: the online loop on the embedded shop, measured; writes
`runs/monitor-demo/report.md` (with plots) and `report.json`.

The statistics over many seeds (a bad canary in 10 seeds, A/A in 20, whether the CTR interval
holds the simulator's truth) use the in-process simulator against the real serving code
(`ServedModel`) and the monitor's own decision (`decide`), checked every `CHECK_EVERY` lists.
The timeline (traffic, taste shift, drift and CTR drop detected, retrain on the event store's
events through `--dataset events`, CTR recovering) runs on an event store with the monitor's
library (`read_window`, `summarise`, `breaches`).
"""

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoprec.artifact import save_model
from shoprec.datasets import load_dataset
from shoprec.events.store import EventStore
from shoprec.models import make_model
from shoprec.monitoring.data import read_window
from shoprec.monitoring.decisions import ROLL_BACK, breaches, decide
from shoprec.monitoring.policy import load_monitor_policy
from shoprec.monitoring.report import Catalogue, summarise
from shoprec.monitoring.stats import rate_interval
from shoprec.runs import runs_dir
from shoprec.service.served import ServedModel, load_served_model
from shoprec.simulation.database import shuffled_model
from shoprec.simulation.inprocess import (
    DEFAULT_START,
    ModelRouter,
    Simulation,
    to_store_records,
)
from shoprec.simulation.world import World

PROFILE = "smoke"
CANARY = 0.2
CHECK_EVERY = 250
BAD_CANARY_SEEDS = 10
BAD_CANARY_LIMIT = 20_000
AA_SEEDS = 20
AA_IMPRESSIONS = 6_000
BUCKET = 500  # lists per version and bucket, for the interval check
PHASE = 3_000  # visits per timeline phase
AFTER_SHIFT = 6_000  # visits between the taste shift and the retrain
TIMELINE_RATE = 1.0  # visits per simulated second
CLICK_LAG = pd.Timedelta(minutes=2)  # lists younger than this may still be clicked: not judged


def _clicked(visit: Any) -> bool:
    return any(e["type"] == "click" and e["request_id"] for e in visit.events)


def canary_run(world: World, champion: ServedModel, challenger: ServedModel, seed: int,
               limit: int, policy: Any) -> tuple[int | None, list[Any]]:  # fmt: skip
    """Serve a canary until the monitor says roll back (or `limit` lists); the impressions
    served when it did (None: never), and every visit."""
    router = ModelRouter(champion, challenger, CANARY, seed=seed)
    simulation = Simulation(world, router, seed=seed)
    counts = {champion.label: [0, 0], challenger.label: [0, 0]}
    visits = []
    for number in range(1, limit + 1):
        done = simulation.step()
        visits.append(done)
        arm = counts[done.served.model_version]
        arm[0] += _clicked(done)
        arm[1] += 1
        if number % CHECK_EVERY == 0:
            verdict = decide(tuple(counts[champion.label]), tuple(counts[challenger.label]), policy)
            if verdict.verdict == ROLL_BACK:
                return number, visits
    return None, visits


def within_interval(visits: list[Any]) -> tuple[int, int]:
    """Buckets of `BUCKET` lists per version whose CTR interval holds the true mean CTR."""
    frame = pd.DataFrame({"version": [v.served.model_version for v in visits],
                          "clicked": [_clicked(v) for v in visits],
                          "truth": [v.expected_ctr for v in visits]})  # fmt: skip
    held = total = 0
    for _, rows in frame.groupby("version"):
        for start in range(0, len(rows) - BUCKET + 1, BUCKET):
            bucket = rows.iloc[start : start + BUCKET]
            rate = rate_interval(int(bucket["clicked"].sum()), BUCKET)
            held += rate.low <= bucket["truth"].mean() <= rate.high
            total += 1
    return held, total


def _served(model: Any, directory: Path, version: str) -> ServedModel:
    save_model(model, directory / version, {"demo_version": version})
    return load_served_model(directory / version, None, "production", version)


def timeline(output: Path, world: World, champion: ServedModel, policy: Any) -> dict[str, Any]:
    """Traffic, a taste shift, detection, a retrain on the stored events, recovery."""
    store_path = output / "events.db"
    store_path.unlink(missing_ok=True)
    url = f"sqlite:///{store_path}"
    store = EventStore(url)
    router = ModelRouter(champion, seed=11)
    simulation = Simulation(
        world,
        router,
        seed=11,
        rate=TIMELINE_RATE,
        drift="taste-shift",
        drift_at=PHASE / TIMELINE_RATE,
    )
    catalogues = {champion.label: Catalogue.of(champion.model)}
    phases: dict[str, list[Any]] = {}

    def run(name: str, count: int) -> pd.Timestamp:
        visits = list(simulation.run(count))
        phases[name] = visits
        impressions, feedback = to_store_records(visits, "production", 11 + len(phases))
        store.add_impressions(impressions)
        store.add_feedback(feedback)
        return pd.Timestamp(DEFAULT_START) + pd.Timedelta(seconds=simulation.clock)

    def ctr(name: str) -> float:
        return float(np.mean([_clicked(v) for v in phases[name]]))

    def truth(name: str) -> float:
        return float(np.mean([v.expected_ctr for v in phases[name]]))

    before_end = run("before", PHASE)
    detected_at = None
    after = []
    for step in range(AFTER_SHIFT // CHECK_EVERY):
        now = run(f"after-{step}", CHECK_EVERY)
        after += phases[f"after-{step}"]
        if detected_at is not None:
            continue  # collecting what shoppers do now, for the retrain
        # the monitor at `now` sees events up to now, and judges lists old enough to be clicked
        window = read_window(store, "production", before_end, now - CLICK_LAG, now)
        comparison = read_window(store, "production", DEFAULT_START, before_end, now)
        summary = summarise(window, catalogues, policy, comparison)
        found = [b for b in breaches(summary, policy) if b.metric in ("ctr_drop", "item_drift_js")]
        if found and detected_at is None:
            detected_at = (step + 1) * CHECK_EVERY
            detection = [b.describe() for b in found]
            drift = summary["drift"]
    phases["after"] = after
    # Retrain on what shoppers did since the shift: the event store as a dataset.
    data = load_dataset("events", PROFILE, url=url)
    shifted_at = before_end.timestamp()
    recent = data.interactions[data.interactions["timestamp"] >= shifted_at]
    retrained = make_model("cooccurrence").fit(recent)
    served = _served(retrained, output / "models", "3")
    simulation.recommend = ModelRouter(served, seed=12)
    run("retrained", PHASE)
    store.dispose()
    return {
        "drift_detected": detected_at is not None,
        "impressions_to_detection": detected_at,
        "detected": detection if detected_at is not None else [],
        "item_js_at_detection": drift["item_js"] if detected_at is not None else None,
        "ctr_before": ctr("before"),
        "ctr_after_shift": ctr("after"),
        "ctr_after_retrain": ctr("retrained"),
        "true_ctr": {
            "before": truth("before"),
            "after_shift": truth("after"),
            "after_retrain": truth("retrained"),
        },  # fmt: skip
        "retrain_interactions": len(recent),
        "phases": {name: len(phases[name]) for name in ("before", "after", "retrained")},
    }, phases


def _plots(output: Path, phases: dict[str, list[Any]], rollbacks: list[int | None]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    clicks = [_clicked(v) for name in ("before", "after", "retrained") for v in phases[name]]
    truth = [v.expected_ctr for name in ("before", "after", "retrained") for v in phases[name]]
    width = 250
    rolling = pd.Series(clicks, dtype=float).rolling(width).mean()
    figure, axis = plt.subplots(figsize=(8, 3.5))
    axis.plot(rolling.to_numpy(), label=f"measured CTR (rolling {width} lists)")
    axis.plot(pd.Series(truth).rolling(width).mean().to_numpy(), label="true CTR (simulator)")
    marks = ((len(phases["before"]), "taste shift"),
             (len(phases["before"]) + len(phases["after"]), "retrained model"))  # fmt: skip
    for x, label in marks:
        axis.axvline(x, color="grey", linestyle="--")
        axis.text(x, 0.02, f" {label}", color="grey")
    axis.set_xlabel("lists served")
    axis.set_ylabel("CTR")
    axis.legend()
    figure.savefig(output / "timeline.png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    figure, axis = plt.subplots(figsize=(6, 3))
    axis.bar(range(1, len(rollbacks) + 1), [r or 0 for r in rollbacks])
    axis.axhline(5_000, color="red", linestyle="--", label="target: 5,000")
    axis.set_xlabel("seed")
    axis.set_ylabel("impressions to rollback")
    axis.legend()
    figure.savefig(output / "bad_canary.png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return ["timeline.png", "bad_canary.png"]


def main(output: Path | None = None) -> dict[str, Any]:
    """Run the demo; write report.json and report.md; return the report."""
    started = time.monotonic()
    output = output or runs_dir() / "monitor-demo"
    output.mkdir(parents=True, exist_ok=True)
    policy = load_monitor_policy()
    data = load_dataset("synthetic", PROFILE)
    world = World(data.shop.tastes)
    models = output / "models"
    champion = _served(make_model("cooccurrence").fit(data.interactions), models, "1")
    poor = _served(shuffled_model(data.interactions, 1), models, "2")
    twin = load_served_model(models / "1", None, "production", "2")  # the same model, version 2

    rollbacks, held, total = [], 0, 0
    for seed in range(BAD_CANARY_SEEDS):
        at, visits = canary_run(world, champion, poor, 100 + seed, BAD_CANARY_LIMIT, policy)
        rollbacks.append(at)
        print(f"bad canary, seed {seed}: rolled back after {at} impressions", file=sys.stderr)
    false_alarms = 0
    for seed in range(AA_SEEDS):
        at, visits = canary_run(world, champion, twin, 200 + seed, AA_IMPRESSIONS, policy)
        false_alarms += at is not None
        bucket_held, bucket_total = within_interval(visits)
        held, total = held + bucket_held, total + bucket_total
        print(f"A/A, seed {seed}: {'false alarm at ' + str(at) if at else 'no alarm'}",
              file=sys.stderr)  # fmt: skip
    shift, phases = timeline(output, world, champion, policy)
    report = {
        "bad_canary": {
            "seeds": BAD_CANARY_SEEDS,
            "rolled_back": sum(r is not None for r in rollbacks),
            "max_impressions_to_rollback": max((r for r in rollbacks if r), default=None),
            "impressions_to_rollback": rollbacks,
            "canary_share": CANARY,
            "checked_every": CHECK_EVERY,
        },
        "aa": {
            "seeds": AA_SEEDS,
            "false_alarms": false_alarms,
            "impressions_per_seed": AA_IMPRESSIONS,
        },  # fmt: skip
        "ctr_within_interval": held / total,
        "ctr_buckets": total,
        "taste_shift": shift,
        "policy": {"version": policy.version, "sha256": policy.sha256},
        "profile": PROFILE,
    }
    plots = _plots(output, phases, rollbacks)
    report["seconds"] = round(time.monotonic() - started, 1)
    (output / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (output / "report.md").write_text(markdown(report, plots))
    return report


def markdown(report: dict[str, Any], plots: list[str]) -> str:
    """The report for people."""
    bad, aa, shift = report["bad_canary"], report["aa"], report["taste_shift"]
    return "\n".join([
        "# shoprec monitor demo",
        "",
        f"Shop: the embedded synthetic shop ({report['profile']} profile); monitoring policy "
        f"version {report['policy']['version']}; {report['seconds']} s.",
        "",
        "| scenario | result | target |",
        "|---|---|---|",
        f"| bad canary ({bad['canary_share']:.0%} of users, a shuffled model) | rolled back in "
        f"{bad['rolled_back']}/{bad['seeds']} seeds, at most {bad['max_impressions_to_rollback']}"
        " impressions | every seed within 5,000 |",
        f"| A/A (the same model in both arms, {aa['impressions_per_seed']} lists each) | "
        f"{aa['false_alarms']} false alarms in {aa['seeds']} seeds | at most 10% |",
        f"| CTR interval holds the simulator's truth | {report['ctr_within_interval']:.1%} of "
        f"{report['ctr_buckets']} buckets | at least 90% |",
        f"| taste shift | detected: {shift['drift_detected']} after "
        f"{shift['impressions_to_detection']} impressions | detected |",
        "",
        f"CTR before the shift {shift['ctr_before']:.3f}, after it {shift['ctr_after_shift']:.3f},"
        f" after retraining on {shift['retrain_interactions']} interactions from the event store "
        f"{shift['ctr_after_retrain']:.3f} (true CTR: "
        + ", ".join(f"{k} {v:.3f}" for k, v in shift["true_ctr"].items()) + ").",
        "",
        "What the monitor saw at detection: " + "; ".join(shift["detected"]),
        "",
        *[f"![{name}]({name})" for name in plots],
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
