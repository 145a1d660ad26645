"""A run's results and parameters as flat `name: value` tables, for logging and comparing."""

import json
import math
import re
from pathlib import Path
from typing import Any

from shoprec.runs import EVALUATION_FILE, RESULT_FILES, read_run

# The parts of each result file that are metrics in MLflow, and the prefix they get there.
METRIC_SECTIONS = {
    "01_explore_data": ((), "data"),
    "02_tune": (("chosen",), "tuned"),
    "03_train": (("metrics",), "test"),
    "04_evaluate": (("metrics",), "evaluation"),
}
# Sections of result files that measure the machine, not the model: never compared.
VOLATILE_SECTIONS = frozenset({"timings"})
RUN_DIR_PLACEHOLDER = "<run>"
# The candidate's metrics a run is judged by, at its k (`ndcg_at_10`), and the model row they come
# from; `lift_over_baseline` is its nDCG over the popularity baseline's.
HEADLINE_METRICS = ("ndcg", "precision", "recall", "map")
CANDIDATE, BASELINE = "candidate", "baseline (popularity)"
METRIC_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_\-./]+")


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts and lists as one dict keyed by dotted paths (`a.b.0.c`)."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return {prefix: value}
    flat = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def results(run_dir: Path) -> dict[str, Any]:
    """Every value the run's result files hold, keyed `<notebook>.<path>`; missing files skipped.

    Timings and memory use (`timings` sections) are left out: they vary from run to run.
    """
    flat = {}
    for notebook, relative in RESULT_FILES.items():
        path = Path(run_dir) / relative
        if path.is_file():
            flat.update(flatten(json.loads(path.read_text()), notebook))
    return {
        key: value for key, value in flat.items() if VOLATILE_SECTIONS.isdisjoint(key.split("."))
    }


def parameters(run_dir: Path) -> dict[str, Any]:
    """Every resolved notebook parameter, keyed `<notebook>.<name>`; run paths as `<run>/...`."""
    run_dir = Path(run_dir)
    record = read_run(run_dir)
    flat = {}
    for notebook, values in record.get("parameters", {}).items():
        for name, value in values.items():
            if isinstance(value, str) and value.startswith(str(run_dir)):
                value = RUN_DIR_PLACEHOLDER + value[len(str(run_dir)) :]
            flat[f"{notebook}.{name}"] = value
    return flat


def metric_name(path: str) -> str:
    """`path` with what MLflow refuses in metric names replaced (`a (b)` -> `a_b`)."""
    return re.sub(r"_*\._*", ".", METRIC_NAME_UNSAFE.sub("_", path)).strip("_")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def metrics(run_dir: Path, notebook: str | None = None) -> dict[str, float]:
    """The run's numeric results as MLflow metrics (e.g. `test.ndcg`); one notebook's if given."""
    out = {}
    for name, (section, prefix) in METRIC_SECTIONS.items():
        path = Path(run_dir) / RESULT_FILES[name]
        if (notebook and notebook != name) or not path.is_file():
            continue
        content = json.loads(path.read_text())
        if name == "04_evaluate":
            out[f"{prefix}.passed"] = float(bool(content.get("passed")))
        for key in section:
            content = content.get(key, {})
        for key, value in flatten(content).items():
            number = _number(value)
            if number is not None:
                out[metric_name(f"{prefix}.{key}")] = number
    return out


def headline_metrics(run_dir: Path) -> dict[str, float]:
    """The candidate's nDCG, precision, recall and MAP at k (`ndcg_at_10`...) and its nDCG lift
    over the popularity baseline, from the run's evaluation; empty before it was evaluated."""
    path = Path(run_dir) / EVALUATION_FILE
    if not path.is_file():
        return {}
    evaluation = json.loads(path.read_text())
    k, rows = evaluation.get("k"), evaluation.get("metrics", {})
    candidate, baseline = rows.get(CANDIDATE, {}), rows.get(BASELINE, {})
    out = {
        f"{name}_at_{k}": number
        for name in HEADLINE_METRICS
        if (number := _number(candidate.get(name))) is not None
    }
    ndcg, base = _number(candidate.get("ndcg")), _number(baseline.get("ndcg"))
    if ndcg is not None and base:
        out["lift_over_baseline"] = ndcg / base
    return out
