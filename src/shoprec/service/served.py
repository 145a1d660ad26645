"""A loaded model version, ready to answer: verified, warmed, every known user's list precomputed.

Lists are the model's own (`Recommender.ranked_lists`, `similar_items`); what the service adds is
when they are computed. Once a version is loaded and warmed it answers at once, ranking a user
on request (arrays, no frame), while one background thread of lowered priority ranks every known
user's top `MAX_K` (when they fit in `PRECOMPUTE_BUDGET` entries), a block of users at a time,
into compact arrays; from then on a request is an array lookup. The model's total order makes
each top-k list the first k places of the top-`MAX_K` list, so both paths give the same answer.
"""

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from shoprec.artifact import ARRAYS_FILE, METADATA_FILE, ArtifactError, load_model, read_metadata
from shoprec.models import Recommender
from shoprec.service import metrics

log = logging.getLogger("shoprec.service")

MAX_K = 100
PRECOMPUTE_BUDGET = 25_000_000  # list entries (users x MAX_K) precomputed, 12 bytes each: 300 MB
PRECOMPUTE_USERS = 1_024  # users ranked at a time by the background thread (one model batch)
PRECOMPUTE_NICENESS = 10  # the background thread yields the cores to requests
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


class PrecomputedLists:
    """Every known user's top-`MAX_K` list as item columns (int32) and the model's scores
    (float64, -inf: an empty place), one row per user in `user_ids_` order.

    `fill` writes them a block of users at a time; rows below `ready` are complete (`ready`
    is raised only after they are written), and `done` is set when `fill` returns.
    """

    def __init__(self, n_users: int, n_items: int) -> None:
        places = min(MAX_K, n_items)
        self.columns = np.empty((n_users, places), dtype=np.int32 if n_items < 2**31 else np.int64)
        self.scores = np.empty((n_users, places))
        self.ready = 0
        self.done = threading.Event()

    @property
    def complete(self) -> bool:
        """Whether every user's list is in."""
        return self.ready == len(self.columns)

    def fill(
        self,
        model: Recommender,
        keep_going: Callable[[], bool] = lambda: True,
        progress: Callable[[int], None] = lambda ready: None,
    ) -> None:
        """Rank every known user, `PRECOMPUTE_USERS` at a time, while `keep_going()` says so;
        `progress(ready)` after each block."""
        try:
            users = model.user_ids_
            for start in range(self.ready, len(users), PRECOMPUTE_USERS):
                if not keep_going():
                    return
                columns, scores, _ = model.ranked_lists(
                    users[start : start + PRECOMPUTE_USERS], self.columns.shape[1]
                )
                stop = start + len(columns)
                self.columns[start:stop], self.scores[start:stop] = columns, scores
                self.ready = stop
                progress(stop)
        finally:
            self.done.set()

    def list_of(self, row: int, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The first k places (columns, scores) of the user at `row`, if already precomputed."""
        if row >= self.ready:
            return None
        return self.columns[row, :k], self.scores[row, :k]


def _lower_priority() -> None:
    """Make this thread, and the threads it starts, give way to request handling (Linux)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PRECOMPUTE_NICENESS)


def _fill_in_background(served: "ServedModel", lists: PrecomputedLists) -> threading.Thread:
    """Fill `lists` in a daemon thread for as long as `served` is in use: the thread keeps only a
    weak reference to it, so a version no longer served stops being precomputed (and its
    `PRECOMPUTED_USERS` gauge falls to 0)."""
    owner = weakref.ref(served)
    model, label = served.model, served.label
    gauge = metrics.PRECOMPUTED_USERS.labels(label)

    def in_use() -> bool:
        return owner() is not None

    def progress(ready: int) -> None:
        if in_use():
            gauge.set(ready)

    def run() -> None:
        _lower_priority()
        try:
            lists.fill(model, keep_going=in_use, progress=progress)
        except Exception:  # noqa: BLE001 - requests keep being ranked on demand
            log.exception("worker %d: precomputing version %s's lists failed", os.getpid(), label)
            return
        if lists.complete:
            log.info("worker %d: version %s's %d lists precomputed", os.getpid(), label,
                     lists.ready)  # fmt: skip

    gauge.set(0)
    weakref.finalize(served, gauge.set, 0)
    thread = threading.Thread(target=run, name=f"precompute-{label}", daemon=True)
    thread.start()
    return thread


def _answer(
    item_ids: np.ndarray, columns: np.ndarray, scores: np.ndarray
) -> tuple[list[int], list[float]]:
    """A list's filled places (finite scores, as `recommend` keeps them): item ids and scores."""
    filled = np.isfinite(scores)
    return item_ids[columns[filled]].tolist(), scores[filled].tolist()


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
    lists: PrecomputedLists | None = field(default=None, repr=False)
    _fallback: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        """The model version as responses and metrics name it (`-` for a bare artifact)."""
        return self.model_version or "-"

    def prepare(self, budget: int = PRECOMPUTE_BUDGET, *, background: bool = True) -> "ServedModel":
        """Compute the fallback list, warm the ranking, then precompute every known user's list
        when they fit in `budget` entries: in a background thread (this version answers
        meanwhile, ranking on request), or before returning when not `background`."""
        model = self.model
        columns, scores, _ = model.ranked_lists([_unknown_user(model)], MAX_K)
        self._fallback = columns[0], scores[0]
        self.warm()
        if len(model.user_ids_) * MAX_K <= budget:
            lists = PrecomputedLists(len(model.user_ids_), len(model.item_ids_))
            self.lists = lists
            if background:
                _fill_in_background(self, lists)
            else:
                lists.fill(model)
                metrics.PRECOMPUTED_USERS.labels(self.label).set(lists.ready)
        return self

    def _row(self, user_id: int) -> int | None:
        users = self.model.user_ids_
        row = int(np.searchsorted(users, user_id))
        return row if row < len(users) and users[row] == user_id else None

    def recommend(self, user_id: int, k: int) -> tuple[list[int], list[float], bool]:
        """The user's top-k item ids and scores, best first, and whether they are the fallback."""
        item_ids = self.model.item_ids_
        row = self._row(user_id)
        if row is None:
            if self._fallback is None:
                columns, scores, _ = self.model.ranked_lists([user_id], k)
                return (*_answer(item_ids, columns[0], scores[0]), True)
            columns, scores = self._fallback
            return (*_answer(item_ids, columns[:k], scores[:k]), True)
        found = self.lists.list_of(row, k) if self.lists is not None else None
        if found is None:  # not precomputed (yet): ranked now, one user
            columns, scores, _ = self.model.ranked_lists([user_id], k)
            found = columns[0], scores[0]
        return (*_answer(item_ids, *found), False)

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
    """Load, verify, warm and start precomputing the artifact at `model_dir`; ArtifactError if
    unusable."""
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
    return served
