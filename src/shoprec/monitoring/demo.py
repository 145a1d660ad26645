"""`make monitor-demo`: the online loop on the embedded shop, measured; writes
`runs/monitor-demo/report.md` (with plots) and `report.json`.

The statistics over many seeds (a bad canary in 10 seeds, A/A in 20, whether the CTR interval
holds the simulator's truth) use the in-process simulator against the real serving code
(`ServedModel`) and the monitor's own decision (`decide`), checked every `CHECK_EVERY` lists.
The timeline runs on local services in a scratch project (`shoprec.monitoring.timeline`):
pipeline, deploy through the gates, shoppers over HTTP, a taste shift, `shoprec monitor
--check` detecting drift and the CTR drop, `shoprec pipeline --dataset events`, its deploy
through the gates, CTR recovering.
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from shoprec.artifact import save_model
from shoprec.datasets import load_dataset
from shoprec.models import make_model
from shoprec.monitoring.decisions import ROLL_BACK, decide
from shoprec.monitoring.policy import load_monitor_policy
from shoprec.monitoring.stats import rate_interval
from shoprec.monitoring.timeline import live_timeline
from shoprec.runs import project_dir, runs_dir
from shoprec.service.served import ServedModel, load_served_model
from shoprec.simulation.database import shuffled_model
from shoprec.simulation.inprocess import (
    ModelRouter,
    Simulation,
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


def statistics(world: World, champion: ServedModel, poor: ServedModel, twin: ServedModel,
               policy: Any) -> tuple[list[int | None], int, int, int]:  # fmt: skip
    """The bad canary in every seed (impressions to rollback), the A/A false alarms, and how
    many CTR buckets' intervals held the truth (and of how many)."""
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
    return rollbacks, false_alarms, held, total


def _plots(output: Path, shift: dict[str, Any], rollbacks: list[int | None]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("before", "after_shift", "after_retrain")
    labels = ("before the shift", "after the shift", "after the retrain")
    measured = [shift["phases"][name] for name in names]
    figure, axis = plt.subplots(figsize=(7, 3.5))
    low = [m["ctr"] - m["interval"][0] for m in measured]
    high = [m["interval"][1] - m["ctr"] for m in measured]
    axis.errorbar(range(3), [m["ctr"] for m in measured], yerr=[low, high], fmt="o", capsize=6,
                  label="measured CTR (event store, 95% interval)")  # fmt: skip
    axis.plot(range(3), [shift["true_ctr"][name] for name in names], "x", markersize=10,
              label="true CTR (simulator)")  # fmt: skip
    axis.set_xticks(range(3), [f"{label}\n{m['lists']} lists" for label, m in
                               zip(labels, measured, strict=True)])  # fmt: skip
    axis.set_ylabel("CTR")
    axis.set_title("Live timeline: shoppers over HTTP against the production service")
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

    # The timeline's commands run in child processes (services, pipelines, shoppers): the
    # thread waits on them while this one computes the many-seed statistics.
    print("timeline on local services (scratch project) ...", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=1) as pool:
        timeline = pool.submit(live_timeline, output / "project", project_dir())
        rollbacks, false_alarms, held, total = statistics(world, champion, poor, twin, policy)
        shift = timeline.result()
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
    plots = _plots(output, shift, rollbacks)
    report["seconds"] = round(time.monotonic() - started, 1)
    (output / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (output / "report.md").write_text(markdown(report, plots))
    return report


def markdown(report: dict[str, Any], plots: list[str]) -> str:
    """The report for people."""
    bad, aa, shift = report["bad_canary"], report["aa"], report["taste_shift"]
    retrain = shift["retrain"]
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
        f"| taste shift | drift detected: {shift['drift_detected']}, CTR drop detected: "
        f"{shift.get('ctr_drop_detected')}, after {shift['impressions_to_detection']} impressions"
        " | detected as drift and as a CTR drop |",
        "",
        "The timeline ran on local services in a scratch project: `shoprec pipeline` (smoke), "
        "`shoprec deploy` through test, staging and production, `shoprec simulate` over HTTP "
        "with a taste shift, `shoprec monitor --check`, `shoprec pipeline --dataset events`, "
        "its deploy through the gates, `shoprec simulate` again (steps: "
        + ", ".join(f"{k} {v} s" for k, v in shift["steps_seconds"].items()) + ").",
        "",
        f"CTR measured from the event store: before the shift {shift['ctr_before']:.3f}, after "
        f"it {shift['ctr_after_shift']:.3f}, after the retrain {shift['ctr_after_retrain']:.3f} "
        "(true CTR: " + ", ".join(f"{k} {v:.3f}" for k, v in shift["true_ctr"].items()) + ").",
        "",
        "What `shoprec monitor --check` reported after the shift: "
        + ("; ".join(shift["breaches"]) or "nothing"),
        "",
        f"The retrain ({retrain['run']}) was evaluated {retrain['evaluation']} against "
        f"{retrain['basis']} ({retrain['basis_reason']}): {retrain['check']}: "
        f"{retrain['value']:.4f} against {retrain['threshold']:.4f}; "
        + ("deployed to production through the gates." if retrain["deployed"]
           else "the gates refused it, so production kept the old model."),
        "",
        *[f"![{name}]({name})" for name in plots],
        "",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
