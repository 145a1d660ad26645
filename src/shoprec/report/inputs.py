"""A side's results as the report reads them: its candidate's top-20 lists, the held-out and
training interactions, the catalogue, its evaluation, training record and run record."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shoprec.report.errors import ReportError
from shoprec.runs import EVALUATION_FILE, RUN_RECORD, TRAINING_METRICS_FILE

EVALUATION_DIR = EVALUATION_FILE.parent
LISTS_FILE = EVALUATION_DIR / "recommendations_top20.csv"
TEST_FILE = EVALUATION_DIR / "test_interactions.csv"
TRAIN_FILE = EVALUATION_DIR / "train_interactions.csv"
CATALOGUE_FILE = EVALUATION_DIR / "catalogue.csv"
PAIR_COLUMNS = ["user_id", "item_id"]


@dataclass(frozen=True)
class SideData:
    """What one side's run produced, in the shape the comparison needs."""

    lists: pd.DataFrame  # user_id, item_id, rank (1 = best), each test user's top `depth`
    test: pd.DataFrame  # user_id, item_id: the held-out interactions
    train: pd.DataFrame  # user_id, item_id: the training interactions
    catalogue: np.ndarray  # every item id of the catalogue, ascending
    evaluation: dict[str, Any]  # 04_evaluate's evaluation.json
    training: dict[str, Any]  # 03_train's metrics.json
    run: dict[str, Any]  # run.json

    @property
    def depth(self) -> int:
        """How deep every list goes (the largest k the report can score)."""
        return int(self.lists["rank"].max())

    @property
    def k(self) -> int:
        """The cut-off the side's deploy policy scores at."""
        return int(self.evaluation["k"])

    def same_held_out_data(self, other: "SideData") -> bool:
        """Whether both sides were scored on exactly the same held-out interactions."""
        return _sorted_pairs(self.test).equals(_sorted_pairs(other.test))


def load_side(directory: Path, label: str) -> SideData:
    """Read a side's results from its run folder (or cache entry); errors name file and side."""
    directory = Path(directory)
    lists = _csv(directory, LISTS_FILE, label, [*PAIR_COLUMNS, "rank"])
    test = _csv(directory, TEST_FILE, label, PAIR_COLUMNS)
    train = _csv(directory, TRAIN_FILE, label, PAIR_COLUMNS)
    catalogue = _csv(directory, CATALOGUE_FILE, label, ["item_id"])["item_id"].to_numpy()
    if test.empty:
        raise ReportError(f"{label}: {directory / TEST_FILE} holds no held-out interactions")
    unknown = np.setdiff1d(lists["item_id"].to_numpy(), catalogue)
    if len(unknown):
        raise ReportError(
            f"{label}: {directory / LISTS_FILE} recommends items not in {CATALOGUE_FILE.name} "
            f"(e.g. item_id {unknown[0]})"
        )
    return SideData(
        lists=lists,
        test=test,
        train=train,
        catalogue=np.unique(catalogue),
        evaluation=_json(directory, EVALUATION_FILE, label),
        training=_json(directory, TRAINING_METRICS_FILE, label),
        run=_json(directory, Path(RUN_RECORD), label),
    )


def _csv(directory: Path, relative: Path, label: str, columns: list[str]) -> pd.DataFrame:
    path = directory / relative
    if not path.is_file():
        raise ReportError(
            f"{label}: {path} is missing; the run did not write what the report reads"
        )
    frame = pd.read_csv(path)
    missing = [column for column in columns if column not in frame]
    if missing:
        raise ReportError(f"{label}: {path} lacks column(s) {', '.join(missing)}")
    if not all(pd.api.types.is_integer_dtype(frame[column]) for column in columns):
        raise ReportError(f"{label}: {path}: columns {', '.join(columns)} must hold integers")
    return frame[columns]


def _json(directory: Path, relative: Path, label: str) -> dict[str, Any]:
    path = directory / relative
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{label}: {path} is missing") from None
    except ValueError as error:
        raise ReportError(f"{label}: {path} is not JSON ({error})") from None


def _sorted_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[PAIR_COLUMNS].drop_duplicates().sort_values(PAIR_COLUMNS).reset_index(drop=True)
