"""Impression logging that never blocks a response and never loses a record.

`ImpressionLogger.log` appends a record to a bounded in-memory queue (no lock, no wake-up);
a writer thread takes what accumulated every `FLUSH_INTERVAL` and stores it in batches.
When the store is unavailable, a batch is appended to this process's spool file (JSON lines)
and replayed once the store answers again; spool files left by processes that ended are
replayed too. When the queue is full, the record goes straight to the spool file. A record
is counted `dropped` only when neither the store nor the spool took it.
"""

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from shoprec.events.errors import EventStoreError

log = logging.getLogger("shoprec.events")

QUEUE_CAPACITY = 20_000
BATCH_SIZE = 1_000
FLUSH_INTERVAL = 0.05  # seconds a record may wait for its batch
RETRY_INTERVAL = 2.0  # seconds between attempts to reach a store that failed
SPOOL_SUFFIX = ".jsonl"


@dataclass
class Counters:
    """What happened to the records this logger was given.

    `received` counts every record `log` took; each then is `queued` (in memory) or, with the
    queue full, spooled at once. Records still in memory are `lost_in_queue`.
    """

    received: int = 0
    queued: int = 0
    written: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, count: int) -> None:
        """Add `count` to counter `name`."""
        with self.lock:
            setattr(self, name, getattr(self, name) + count)

    def as_dict(self) -> dict[str, int]:
        """The counters by name."""
        with self.lock:
            return {
                name: getattr(self, name)
                for name in ("received", "queued", "written", "spooled", "replayed", "dropped")
            }


def lost_in_queue(counts: dict[str, int]) -> int:
    """Records a logger received but neither wrote, spooled nor counted dropped: what a
    process that ended without `close` (a crash) lost from its queue."""
    return counts.get("received", 0) - sum(
        counts.get(name, 0) for name in ("written", "spooled", "dropped")
    )


def _encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_NAIVE_UTC) + b"\n"


def _decode(line: bytes) -> dict[str, Any]:
    record = orjson.loads(line)
    record["served_at"] = datetime.fromisoformat(record["served_at"])
    return record


class ImpressionLogger:
    """A bounded queue of impression records and the thread that writes them."""

    def __init__(
        self,
        store: Callable[[], Any],
        spool_dir: Path,
        *,
        capacity: int = QUEUE_CAPACITY,
        batch_size: int = BATCH_SIZE,
        on_count: Callable[[str, int], None] | None = None,
    ) -> None:
        """`store` opens the event store (it may raise EventStoreError; it is retried)."""
        self._open_store = store
        self._store: Any = None
        self.spool_dir = Path(spool_dir)
        self.spool_path = self.spool_dir / f"{os.getpid()}-{time.time_ns()}{SPOOL_SUFFIX}"
        self._spool_file: Any = None
        self._spool_lock = threading.Lock()
        self._queue: deque[dict[str, Any]] = deque()
        self.capacity = capacity
        self._stopping = threading.Event()
        self.batch_size = batch_size
        self.counters = Counters()
        self._on_count = on_count
        self._store_down_since: float | None = None
        self._spool_pending = False
        self._next_replay = 0.0
        self._thread = threading.Thread(target=self._run, name="impression-writer", daemon=True)
        self._closed = False

    def start(self) -> "ImpressionLogger":
        """Start the writer thread."""
        self._thread.start()
        return self

    def _count(self, name: str, count: int) -> None:
        if count:
            self.counters.add(name, count)
            if self._on_count is not None:
                self._on_count(name, count)

    def log(self, record: dict[str, Any]) -> None:
        """Take one impression record without waiting for any I/O (unless the queue is full)."""
        self._count("received", 1)
        if len(self._queue) >= self.capacity:
            self._spool([record])
            return
        self._queue.append(record)  # atomic; the writer wakes on its own schedule
        self._count("queued", 1)

    def pending(self) -> int:
        """Records waiting in the queue."""
        return len(self._queue)

    # The writer thread

    def _drain(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        with contextlib.suppress(IndexError):
            while len(batch) < self.batch_size:
                batch.append(self._queue.popleft())
        return batch

    def _run(self) -> None:
        while True:
            stopping = self._stopping.wait(FLUSH_INTERVAL)
            while batch := self._drain():
                self._write(batch)
            if stopping:
                return
            if time.monotonic() >= self._next_replay:
                self._replay_spools()

    def _store_or_none(self) -> Any:
        if self._store is None:
            try:
                self._store = self._open_store()
            except EventStoreError as error:
                self._store_failed(error)
        return self._store

    def _store_failed(self, error: Exception) -> None:
        if self._store_down_since is None:
            self._store_down_since = time.monotonic()
            log.warning("impressions: event store unavailable, spooling to %s: %s",
                        self.spool_path, error)  # fmt: skip
        self._next_replay = time.monotonic() + RETRY_INTERVAL

    def _write(self, batch: list[dict[str, Any]]) -> None:
        store = None if self._store_down_since is not None else self._store_or_none()
        if store is not None:
            try:
                store.add_impressions(batch)
            except EventStoreError as error:
                self._store_failed(error)
            else:
                self._count("written", len(batch))
                return
        self._spool(batch)

    def _spool(self, batch: list[dict[str, Any]]) -> None:
        data = b"".join(_encode(record) for record in batch)
        try:
            with self._spool_lock:
                if self._spool_file is None:
                    self.spool_dir.mkdir(parents=True, exist_ok=True)
                    self._spool_file = self.spool_path.open("ab")
                    fcntl.flock(self._spool_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._spool_file.write(data)
                self._spool_file.flush()
                os.fsync(self._spool_file.fileno())
                self._spool_pending = True
        except OSError as error:
            log.error("impressions: %d records dropped, spool %s failed: %s",
                      len(batch), self.spool_path, error)  # fmt: skip
            self._count("dropped", len(batch))
        else:
            self._count("spooled", len(batch))

    def _replay_spools(self) -> None:
        """Store what spool files hold: this process's own, and those of ended processes."""
        self._next_replay = time.monotonic() + RETRY_INTERVAL
        candidates = sorted(self.spool_dir.glob(f"*{SPOOL_SUFFIX}"))
        if not candidates and not self._spool_pending:
            self._store_down_since = None
            return
        store = self._store_or_none()
        if store is None:
            return
        try:
            if self._spool_pending:
                with self._spool_lock:
                    self._replay_own(store)
            for path in candidates:
                if path != self.spool_path:
                    self._replay_other(store, path)
        except EventStoreError as error:
            self._store_failed(error)
            return
        if self._store_down_since is not None:
            log.warning("impressions: event store available again after %.1f s",
                        time.monotonic() - self._store_down_since)  # fmt: skip
        self._store_down_since = None

    def _replay_records(self, store: Any, path: Path, data: bytes) -> None:
        records = []
        for number, line in enumerate(data.splitlines(), start=1):
            try:
                records.append(_decode(line))
            except (ValueError, KeyError) as error:  # a line cut short by a crash
                log.error("impressions: %s line %d unreadable, skipped: %s", path, number, error)
        for start in range(0, len(records), self.batch_size):
            store.add_impressions(records[start : start + self.batch_size])
        self._count("replayed", len(records))
        if records:
            log.info("impressions: %d spooled records from %s stored", len(records), path.name)

    def _replay_own(self, store: Any) -> None:
        if self._spool_file is None:
            return
        self._spool_file.flush()
        self._replay_records(store, self.spool_path, self.spool_path.read_bytes())
        self._spool_file.truncate(0)
        self._spool_file.seek(0)
        self._spool_pending = False

    def _replay_other(self, store: Any, path: Path) -> None:
        try:
            stream = path.open("rb+")
        except FileNotFoundError:
            return
        with stream:
            try:
                fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # its process is alive and replays it itself
                return
            self._replay_records(store, path, stream.read())
            path.unlink(missing_ok=True)

    def close(self, timeout: float = 10.0) -> dict[str, int]:
        """Write what the queue holds (or spool it), stop the thread; return the counters."""
        if not self._closed:
            self._closed = True
            if self._thread.is_alive():
                self._stopping.set()
                self._thread.join(timeout)
            left = list(self._queue)
            self._queue.clear()
            if left:
                self._spool(left)
            with self._spool_lock:
                if self._spool_file is not None:
                    empty = self._spool_file.tell() == 0
                    self._spool_file.close()
                    self._spool_file = None
                    if empty:
                        self.spool_path.unlink(missing_ok=True)
            if self._store is not None:
                self._store.dispose()
        return self.counters.as_dict()
