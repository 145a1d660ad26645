"""report.json and report.md: the numbers, what changed, whether head would ship, the cost."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoprec.report import bootstrap
from shoprec.report.bootstrap import BETTER, WORSE, Estimate
from shoprec.report.comparison import LABELS, Comparison
from shoprec.report.git import short
from shoprec.report.inputs import SideData
from shoprec.report.plots import DELTAS_AT_K, METRICS_AT_K, SEGMENT_DELTAS
from shoprec.report.sides import SideRun, Spec

SCHEMA_VERSION = 1
REPORT_JSON, REPORT_MD, COMMENT_MD = "report.json", "report.md", "comment.md"
REPORT_FILES = (REPORT_JSON, REPORT_MD, COMMENT_MD)
MARKER = "<!-- shoprec report -->"  # finds the pull request comment to update


@dataclass(frozen=True)
class Sides:
    """Both sides' runs and data."""

    base: SideRun
    head: SideRun
    base_data: SideData
    head_data: SideData


def report_json(
    sides: Sides,
    spec: Spec,
    comparison: Comparison,
    changed: dict[str, Any],
    uncommitted: list[str],
    plots: list[str],
) -> dict[str, Any]:
    """Everything the report says, as data (schema_version 1)."""
    head_evaluation = sides.head_data.evaluation
    return {
        "schema_version": SCHEMA_VERSION,
        "base": _side(sides.base, sides.base_data),
        "head": {**_side(sides.head, sides.head_data), "uncommitted_changes_ignored": uncommitted},
        "profile": spec.profile,
        "dataset": spec.dataset,
        "parameters": spec.overrides,
        "k": comparison.k,
        "bootstrap": {
            "method": "paired" if comparison.paired else "unpaired",
            "resamples": bootstrap.RESAMPLES,
            "confidence": bootstrap.CONFIDENCE,
            "seed": bootstrap.SEED,
            "test_users": comparison.users,
        },
        "metrics": {name: found.as_dict() for name, found in comparison.metrics.items()},
        "curves": {
            name: {
                "k": list(range(1, len(curve) + 1)),
                **{
                    field: [getattr(found, field) for found in curve]
                    for field in ("base", "head", "delta", "low", "high", "verdict")
                },
            }
            for name, curve in comparison.curves.items()
        },
        "segments": {
            segment.name: {
                "definition": segment.definition,
                "test_users": segment.users,
                "metrics": {name: found.as_dict() for name, found in segment.metrics.items()},
            }
            for segment in comparison.segments
        },
        "gate": {
            "passed": head_evaluation.get("passed") is True,
            "status": head_evaluation.get("status"),
            "policy": head_evaluation.get("policy"),
            "production": head_evaluation.get("production"),
            "checks": head_evaluation.get("checks", []),
            "base_passed": sides.base_data.evaluation.get("passed") is True,
        },
        "changed": changed,
        "cost": {
            "base": _cost(sides.base, sides.base_data),
            "head": _cost(sides.head, sides.head_data),
        },
        "notes": comparison.notes,
        "plots": plots,
    }


def _side(run: SideRun, data: SideData) -> dict[str, Any]:
    return {
        "ref": run.side.ref,
        "commit": run.side.commit,
        "run_id": run.record["run_id"],
        "cached": run.cached,
        "cache_key": run.record.get("key"),
        "environment": run.record["environment"],
        "made_at": run.record["made_at"],
        "lock_sha256": run.record["lock_sha256"],
        "algorithm": data.training.get("algorithm"),
        "hyperparameters": data.training.get("hyperparameters"),
    }


def _cost(run: SideRun, data: SideData) -> dict[str, Any]:
    timings = data.training.get("timings", {})
    return {
        "fit_seconds": timings.get("fit_seconds"),
        "recommend_seconds": timings.get("recommend_seconds"),
        "recommended_users": timings.get("recommended_users"),
        "model_bytes": run.record["model_bytes"],
        "pipeline_seconds": run.record["pipeline_seconds"],
        "notebook_seconds": data.run.get("durations_s", {}),
    }


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write report.json, report.md (with the plots) and comment.md (without, for a comment)."""
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    (out / REPORT_MD).write_text(markdown(report, images=True))
    (out / COMMENT_MD).write_text(markdown(report, images=False))


def markdown(report: dict[str, Any], *, images: bool) -> str:
    """The report for people: headline, metrics, segments, gate, changes, cost, provenance."""
    sections = [
        _title(report),
        _headline(report),
        _metrics(report, images),
        _segments(report, images),
        _gate(report),
        _changes(report),
        _cost_table(report),
        _provenance(report),
    ]
    return "\n".join(section for section in sections if section)


def _name(side: dict[str, Any]) -> str:
    ref = side["ref"]
    shown = f"`{short(side['commit'])}`"
    return shown if ref in (side["commit"], short(side["commit"])) else f"`{ref}` ({shown})"


def _title(report: dict[str, Any]) -> str:
    return (
        f"{MARKER}\n# Model report: {_name(report['base'])} → {_name(report['head'])}\n\n"
        f"Profile `{report['profile']}`, dataset `{report['dataset']}`"
        + (f", parameters `{json.dumps(report['parameters'])}`" if report["parameters"] else "")
        + '. How to read it: the README, "Reading the model report".\n'
    )


def _headline(report: dict[str, Any]) -> str:
    k, gate = report["k"], report["gate"]
    ship = (
        "**would pass** the deploy gate"
        if gate["passed"]
        else (f"**would not pass** the deploy gate ({gate['status']})")
    )
    by_verdict: dict[str, list[str]] = {}
    for name, found in report["metrics"].items():
        by_verdict.setdefault(found["verdict"], []).append(f"{LABELS[name]}@{k}")
    parts = [f"Head {ship}."]
    for verdict in (WORSE, BETTER, bootstrap.NO_CHANGE):
        if verdict in by_verdict:
            parts.append(f"{verdict.capitalize()}: {', '.join(by_verdict[verdict])}.")
    users = report["bootstrap"]["test_users"]
    method = report["bootstrap"]["method"]
    lines = [" ".join(parts), ""]
    lines.append(
        f"{users['head']:,} test users; {method} bootstrap over them, "
        f"{report['bootstrap']['resamples']:,} resamples (seed {report['bootstrap']['seed']}), "
        f"{report['bootstrap']['confidence']:.0%} intervals for head - base."
    )
    if report["base"]["commit"] == report["head"]["commit"]:
        lines += [
            "",
            "> **Note:** base and head are the same commit: one run, compared with itself.",
        ]
    for note in report["notes"]:
        lines += ["", f"> **Note:** {note}"]
    if report["head"]["uncommitted_changes_ignored"]:
        files = ", ".join(f"`{path}`" for path in report["head"]["uncommitted_changes_ignored"])
        lines += [
            "",
            f"> **Note:** head is the commit; uncommitted changes are not in it ({files}).",
        ]
    return "\n".join(lines) + "\n"


def _row(label: str, found: dict[str, Any]) -> str:
    verdict = found["verdict"]
    shown = f"**{verdict}**" if verdict in (BETTER, WORSE) else verdict
    return (
        f"| {label} | {found['base']:.4f} | {found['head']:.4f} | {found['delta']:+.4f} "
        f"| [{found['low']:+.4f}, {found['high']:+.4f}] | {shown} |"
    )


TABLE_HEAD = (
    "| metric | base | head | head - base | 95% interval | verdict |\n|---|---|---|---|---|---|"
)


def _metrics(report: dict[str, Any], images: bool) -> str:
    k = report["k"]
    rows = [_row(f"{LABELS[name]}@{k}", found) for name, found in report["metrics"].items()]
    text = f"## Metrics at k = {k}\n\n{TABLE_HEAD}\n" + "\n".join(rows) + "\n"
    if images:
        text += (
            f"\n![each metric at k = 1..20, base and head]({METRICS_AT_K})\n"
            f"\n![head - base at each k with its interval]({DELTAS_AT_K})\n"
        )
    return text


def _segments(report: dict[str, Any], images: bool) -> str:
    k = report["k"]
    names = list(report["metrics"])
    lines = [
        f"## By segment, at k = {k}",
        "",
        "head - base [95% interval] in each segment:",
        "",
        "| segment | test users | " + " | ".join(f"{LABELS[n]}@{k}" for n in names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for name, segment in report["segments"].items():
        users = segment["test_users"]
        count = (
            f"{users['head']:,}"
            if users["base"] == users["head"]
            else (f"{users['base']:,} / {users['head']:,}")
        )
        cells = [_cell(segment["metrics"][n]) if n in segment["metrics"] else "-" for n in names]
        lines.append(f"| {name} | {count} | " + " | ".join(cells) + " |")
    lines += ["", "Segments (cut on base's training data):", ""]
    lines += [
        f"- **{name}**: {segment['definition']}." for name, segment in report["segments"].items()
    ]
    if images:
        lines += ["", f"![head - base by segment]({SEGMENT_DELTAS})"]
    return "\n".join(lines) + "\n"


def _cell(found: dict[str, Any]) -> str:
    """`-0.1010 [-0.1172, -0.0849] **worse**` for a table cell."""
    verdict = found["verdict"]
    shown = f" **{verdict}**" if verdict in (BETTER, WORSE) else ""
    return f"{found['delta']:+.4f} [{found['low']:+.4f}, {found['high']:+.4f}]{shown}"


def _gate(report: dict[str, Any]) -> str:
    gate = report["gate"]
    policy = gate.get("policy") or {}
    lines = [
        "## Would head ship?",
        "",
        f"Head's `04_evaluate` under its deploy policy (`{policy.get('file', 'policy')}` version "
        f"{policy.get('version', '?')}): **{gate['status']}** "
        f"(base: {'passed' if gate['base_passed'] else 'not passed'}). Both sides are evaluated "
        "without a production model: the report never reads the team's registry, so the "
        "regression check against production is left to `shoprec deploy`.",
        "",
        "| check | value | threshold | passed |",
        "|---|---|---|---|",
    ]
    for check in gate["checks"]:
        threshold = check.get("threshold")
        shown = f"{threshold:.4f}" if isinstance(threshold, int | float) else "-"
        lines.append(
            f"| {check['check']} | {check['value']:.4f} | {shown} | "
            f"{'yes' if check['passed'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def _changes(report: dict[str, Any]) -> str:
    changed = report["changed"]
    lines = ["## What changed", "", "**Notebook parameters** (as each run resolved them):", ""]
    if changed["parameters"]:
        lines += ["| notebook | parameter | base | head |", "|---|---|---|---|"]
        for row in changed["parameters"]:
            base = _value(row["base"]) if row["in_base"] else "(absent)"
            head = _value(row["head"]) if row["in_head"] else "(absent)"
            lines.append(f"| {row['notebook']} | `{row['name']}` | {base} | {head} |")
    else:
        lines.append("None.")
    trained = changed["model"]
    algorithm = trained["algorithm"]
    lines += ["", "**Model trained** (algorithm and hyperparameters, tuned ones included):", ""]
    if algorithm["base"] != algorithm["head"]:
        lines.append(f"- algorithm: `{algorithm['base']}` → `{algorithm['head']}`")
    lines += [
        f"- `{row['name']}`: {_value(row['base'])} → {_value(row['head'])}"
        for row in trained["hyperparameters"]
    ]
    if algorithm["base"] == algorithm["head"] and not trained["hyperparameters"]:
        lines.append(f"Unchanged (`{algorithm['head']}`).")
    lines += ["", "**Notebooks** (nbdime diff pages in the report's folder):", ""]
    lines += [
        f"- `{row['path']}` {row['status']}: [diff]({row['diff_page']})"
        for row in changed["notebooks"]
    ] or ["None."]
    lines += ["", "**Package modules:**", ""]
    lines += [
        f"- `{row['path']}` {row['status']} (+{row['added']} -{row['deleted']})"
        for row in changed["modules"]
    ] or ["None."]
    lock = changed["lock"]
    lines += ["", "**Lock file:** " + ("changed" if lock["changed"] else "unchanged") + "."]
    if lock["packages"]:
        lines += ["", "| package | base | head |", "|---|---|---|"]
        lines += [
            f"| {row['name']} | {row['base'] or '-'} | {row['head'] or '-'} |"
            for row in lock["packages"]
        ]
    if changed["other_files"]:
        lines += ["", f"**Other files:** {len(changed['other_files'])} changed."]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    return f"`{json.dumps(value)}`"


def _cost_table(report: dict[str, Any]) -> str:
    base, head = report["cost"]["base"], report["cost"]["head"]

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    def ratio(before: float | None, after: float | None) -> str:
        return f"{after / before:.2f}x" if before and after is not None else "-"

    rows = [
        ("fit time", seconds(base["fit_seconds"]), seconds(head["fit_seconds"]),
         ratio(base["fit_seconds"], head["fit_seconds"])),
        ("recommend time (all users)", seconds(base["recommend_seconds"]),
         seconds(head["recommend_seconds"]),
         ratio(base["recommend_seconds"], head["recommend_seconds"])),
        ("model size", f"{base['model_bytes'] / 1e6:.2f} MB", f"{head['model_bytes'] / 1e6:.2f} MB",
         ratio(base["model_bytes"], head["model_bytes"])),
        ("pipeline wall time", seconds(base["pipeline_seconds"]),
         seconds(head["pipeline_seconds"]),
         ratio(base["pipeline_seconds"], head["pipeline_seconds"])),
    ]  # fmt: skip
    lines = [
        "## Cost",
        "",
        "| | base | head | head / base |",
        "|---|---|---|---|",
        *(f"| {name} | {a} | {b} | {c} |" for name, a, b, c in rows),
        "",
        "Times are single measurements on the machine that ran each side"
        + "".join(
            f"; {name}'s from its cached run of {report[name]['made_at']}"
            for name in ("base", "head")
            if report[name]["cached"]
        )
        + ". They are not part of any verdict.",
    ]
    return "\n".join(lines) + "\n"


def _provenance(report: dict[str, Any]) -> str:
    lines = ["<details><summary>Runs and environments</summary>", ""]
    for name in ("base", "head"):
        side = report[name]
        lines.append(
            f"- {name}: commit `{side['commit']}`, run `{side['run_id']}`"
            f"{' (cached)' if side['cached'] else ''}, {side['algorithm']} "
            f"`{json.dumps(side['hyperparameters'])}`, run in {side['environment']}"
        )
    lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def estimate_line(name: str, k: int, found: Estimate) -> str:
    """One line for the terminal: `nDCG@10  0.2284 -> 0.0809  -0.1475 [-0.16, -0.14] worse`."""
    return (
        f"  {LABELS[name] + '@' + str(k):<14} {found.base:.4f} -> {found.head:.4f}  "
        f"{found.delta:+.4f} [{found.low:+.4f}, {found.high:+.4f}]  {found.verdict}"
    )


def write_failure(out: Path, base: dict[str, str], head: dict[str, str], error: str) -> None:
    """A report that says why there are no numbers: which side failed, and its log's last lines
    (so the job summary and the pull request comment say it too)."""
    report = {"schema_version": SCHEMA_VERSION, "base": base, "head": head, "error": error}
    (out / REPORT_JSON).write_text(json.dumps(report, indent=2) + "\n")
    text = (
        f"{MARKER}\n# Model report: {_name(base)} → {_name(head)}\n\n"
        f"**No report: a side failed.**\n\n```\n{error}\n```\n"
    )
    for name in (REPORT_MD, COMMENT_MD):
        (out / name).write_text(text)
