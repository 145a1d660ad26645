"""The end of `shoprec pipeline`'s output: one aligned table of models and their metrics."""

import json
from pathlib import Path

from shoprec.pipeline.command import outcome_lines
from shoprec.runs import EVALUATION_FILE


def test_the_summary_table_aligns_whatever_the_model_names(tmp_path: Path) -> None:
    row = {"ndcg": 0.25, "precision": 0.0867, "recall": 0.3277, "map": 0.1622}
    models = ["candidate", "baseline (popularity)", "production (recipe refit)", "oracle"]
    evaluation = {"k": 10, "metrics": dict.fromkeys(models, row), "checks": []}
    (tmp_path / EVALUATION_FILE).parent.mkdir(parents=True)
    (tmp_path / EVALUATION_FILE).write_text(json.dumps(evaluation))
    record = {"run_id": "r", "evaluation_passed": True, "duration_s": 1.0, "durations_s": {}}

    table = [line for line in outcome_lines(tmp_path, record) if "ndcg@10" in line]

    assert [line.split("  ndcg@10")[0].strip() for line in table] == models
    assert len({line.index("ndcg@10") for line in table}) == 1, "\n".join(table)
    assert table[2] == (
        "  production (recipe refit)  ndcg@10 0.2500  precision@10 0.0867  recall@10 0.3277  "
        "map@10 0.1622"
    )
