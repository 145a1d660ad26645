"""A loaded model version, ready to answer: verified, precomputed where it pays, warmed.

Lists are the model's own (`Recommender.recommend`, `similar_items`); what the service adds is
when they are computed. At load time every known user's top `MAX_K` list is computed in batches
(when it fits in `PRECOMPUTE_BUDGET` entries), so a request is an array lookup: the model's
total order makes each top-k list the first k places of the top-`MAX_K` list. Larger models
compute a user's list on first request and keep the most recent ones in a bounded cache.
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shoprec.artifact import ARRAYS_FILE, METADATA_FILE, ArtifactError, load_model, read_metadata
from shoprec.models import Recommender

MAX_K = 100
PRECOMPUTE_BUDGET = 4_000_000  # list entries (users x MAX_K) computed at load time
CACHE_USERS = 50_000  # lists kept when they are computed on demand
PRECOMPUTE_BATCH = 1_024
MODEL_SCORE_SCALE = "model"
FALLBACK_SCORE_SCALE = "popularity"
SCORE_SCALES = {
    MODEL_SCORE_SCALE: "the model's own score for this user and item (higher is better; the "
    "range depends on the algorithm)",
    FALLBACK_SCORE_SCALE: "the item's share of the most popular item's training interactions, "
    "in (0, 1]; given to users the model never saw (fallback)",
}

TopList = tuple[list[int], list[float]]


def _unknown_user(model: Recommender) -> int:
    """A user id the model never saw."""
    known = model.user_ids_
    candidate = int(known.max()) + 1 if len(known) and known.max() < 2**63 - 1 else -1
    while model.is_known_user(candidate):
        candidate -= 1
    return candidate


def _split_frame(frame, users: np.ndarray) -> list[TopList]:  # noqa: ANN001 - a DataFrame
    user_col = frame["user_id"].to_numpy()
    item_col = frame["item_id"].to_numpy()
    score_col = frame["score"].to_numpy()
    starts = np.searchsorted(user_col, users, side="left")
    ends = np.searchsorted(user_col, users, side="right")
    return [
        (item_col[a:b].tolist(), score_col[a:b].tolist())
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


@dataclass
class ServedModel:
    """One model version as the endpoints use it, and what identifies it."""

    model: Recommender
    run_id: str | None
    model_version: str | None
    algorithm: str
    version: str
    model_sha256: str
    environment: str
    loaded_at: str
    directory: Path | None = None
    _top_items: np.ndarray | None = field(default=None, repr=False)
    _top_scores: np.ndarray | None = field(default=None, repr=False)
    _top_lengths: np.ndarray | None = field(default=None, repr=False)
    _fallback: TopList = field(default=([], []), repr=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def label(self) -> str:
        """The model version as responses and metrics name it (`-` for a bare artifact)."""
        return self.model_version or "-"

    def prepare(self, budget: int = PRECOMPUTE_BUDGET) -> "ServedModel":
        """Compute the fallback list and, when they fit in `budget`, every known user's list."""
        model = self.model
        unknown = _unknown_user(model)
        frame = model.recommend([unknown], k=MAX_K)
        self._fallback = _split_frame(frame, np.array([unknown]))[0]
        users = model.user_ids_
        if len(users) * MAX_K <= budget:
            items = np.full((len(users), MAX_K), -1, dtype=np.int64)
            scores = np.full((len(users), MAX_K), np.nan)
            lengths = np.zeros(len(users), dtype=np.int64)
            for start in range(0, len(users), PRECOMPUTE_BATCH):
                batch = users[start : start + PRECOMPUTE_BATCH]
                frame = model.recommend(batch, k=MAX_K)
                rows = np.searchsorted(users, frame["user_id"].to_numpy())
                ranks = frame["rank"].to_numpy() - 1
                items[rows, ranks] = frame["item_id"].to_numpy()
                scores[rows, ranks] = frame["score"].to_numpy()
                np.add.at(lengths, rows, 1)
            self._top_items, self._top_scores, self._top_lengths = items, scores, lengths
        return self

    def _row(self, user_id: int) -> int | None:
        users = self.model.user_ids_
        row = int(np.searchsorted(users, user_id))
        return row if row < len(users) and users[row] == user_id else None

    def recommend(self, user_id: int, k: int) -> tuple[list[int], list[float], bool]:
        """The user's top-k item ids and scores, best first, and whether they are the fallback."""
        row = self._row(user_id)
        if row is None:
            items, scores = self._fallback
            return items[:k], scores[:k], True
        if self._top_items is not None:
            n = min(k, int(self._top_lengths[row]))
            return self._top_items[row, :n].tolist(), self._top_scores[row, :n].tolist(), False
        with self._cache_lock:
            cached = self._cache.get(user_id)
            if cached is not None:
                self._cache.move_to_end(user_id)
        if cached is None:
            cached = _split_frame(self.model.recommend([user_id], k=MAX_K), np.array([user_id]))[0]
            with self._cache_lock:
                self._cache[user_id] = cached
                while len(self._cache) > CACHE_USERS:
                    self._cache.popitem(last=False)
        return cached[0][:k], cached[1][:k], False

    def similar_items(self, item_id: int, k: int) -> TopList:
        """The item's k most similar items and their scores; KeyError for an unknown item."""
        ids, scores = self.model.similar_items([item_id], k=k)
        keep = ids[0] >= 0
        return ids[0][keep].tolist(), scores[0][keep].tolist()

    def warm(self) -> None:
        """Answer a few requests of each kind, so the first real ones are not the slow ones."""
        users = self.model.user_ids_
        for user in users[:: max(1, len(users) // 4)][:4].tolist():
            self.recommend(int(user), 10)
        self.recommend(_unknown_user(self.model), 10)
        for item in self.model.item_ids_[:2].tolist():
            self.similar_items(int(item), 10)


def load_served_model(
    model_dir: Path,
    run_id: str | None,
    environment: str,
    model_version: str | None = None,
    *,
    prepare: bool = True,
) -> ServedModel:
    """Load, verify, prepare and warm the artifact at `model_dir`; ArtifactError if unusable."""
    model = load_model(model_dir)
    record = read_metadata(model_dir)
    if ARRAYS_FILE not in record["files"]:
        raise ArtifactError(f"{model_dir / METADATA_FILE}: no sha256 listed for {ARRAYS_FILE}")
    served = ServedModel(
        model=model,
        run_id=run_id,
        model_version=model_version,
        algorithm=record["algorithm"],
        version=record.get("shoprec_version", "unknown"),
        model_sha256=record["files"][ARRAYS_FILE],
        environment=environment,
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        directory=Path(model_dir),
    )
    if prepare:
        served.prepare()
        served.warm()
    return served
