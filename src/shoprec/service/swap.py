"""Zero-downtime model swaps inside one worker process.

The worker keeps its `ServedModel` in a `ModelHolder`; a request reads the holder once and
answers entirely from that model, so a swap never mixes versions within one response. A
watcher thread polls the service's control folder; when asked for another version it loads
it beside the current one (fetch, verify checksums, precompute, warm) and only then replaces
the holder's model in one assignment. A version that fails is refused: the worker keeps
serving what it had and records the error for the deploy command to report.
"""

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shoprec.deploy import control
from shoprec.service.canary import in_canary
from shoprec.service.served import ServedModel
from shoprec.settings import get_settings

log = logging.getLogger("shoprec.service")

POLL_INTERVAL = 0.1


class ModelHolder:
    """The model version a worker serves now, and a canary challenger with the share of users
    it serves; each replaced whole, never changed in place."""

    def __init__(self, served: ServedModel) -> None:
        self.current = served
        self.canary: tuple[ServedModel, float] | None = None

    def for_user(self, user_id: int) -> ServedModel:
        """The version that answers `user_id`: the challenger for the canary's users (by a hash
        of the user id, `shoprec.service.canary`), else the current version."""
        canary = self.canary
        if canary is not None and in_canary(user_id, canary[1], canary[0].label):
            return canary[0]
        return self.current


class SwapWatcher:
    """Follows the control folder's target version in a background thread."""

    def __init__(
        self,
        holder: ModelHolder,
        directory: Path,
        load: Callable[[dict[str, Any]], ServedModel],
        on_swap: Callable[[ServedModel, ServedModel], None] | None = None,
        interval: float = POLL_INTERVAL,
    ) -> None:
        self.holder = holder
        self.directory = Path(directory)
        self.load = load
        self.on_swap = on_swap
        self.interval = interval
        self.handled: str | None = None
        self.service_pid = str(get_settings().service_pid or os.getpid())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-swap", daemon=True)

    def start(self, token: str | None = None) -> "SwapWatcher":
        """Record the state of the model loaded at start-up (for `token`), then watch."""
        self.handled = token
        self._report(token, error=None)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (a load under way finishes first)."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _report(self, token: str | None, error: str | None) -> None:
        control.write_worker_status(
            self.directory,
            {
                "pid": os.getpid(),
                "service_pid": int(self.service_pid),
                "token": token,
                "version": self.holder.current.model_version,
                "canary_version": canary[0].model_version
                if (canary := self.holder.canary)
                else None,
                "ok": error is None,
                "error": error,
                "at": time.time(),
            },
        )

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            target = control.read_target(self.directory)
            if target is None or target["token"] == self.handled:
                continue
            self.check(target)

    def check(self, target: dict[str, Any]) -> None:
        """Serve the target's version (and canary) if they load and verify; record the outcome."""
        version, token = target["version"], target["token"]
        self.handled = token
        old = self.holder.current
        pid = os.getpid()
        started = time.monotonic()
        try:
            if old.model_version == version:
                new = old
            else:
                log.info("worker %d: loading version %s beside version %s", pid, version, old.label)
                new = self.load(target)
            canary = self._canary(target.get("canary"))
        except Exception as error:  # noqa: BLE001 - any failure refuses the version
            message = f"version {version} refused: {error}"
            log.error("worker %d: %s; still serving version %s", pid, message, old.label)
            self._report(token, error=message)
            return
        self.holder.current = new
        self.holder.canary = canary
        if new is not old:
            if self.on_swap is not None:
                self.on_swap(old, new)
            log.info("worker %d: now serving version %s (was %s), loaded in %.2f s",
                     pid, new.label, old.label, time.monotonic() - started)  # fmt: skip
        self._report(token, error=None)

    def _canary(self, wanted: dict[str, Any] | None) -> tuple[ServedModel, float] | None:
        """The challenger the target asks for: kept if already loaded, else loaded and checked."""
        if not wanted:
            return None
        fraction = float(wanted["fraction"])
        current = self.holder.canary
        if current is not None and current[0].model_version == wanted["version"]:
            return current[0], fraction
        log.info("worker %d: loading canary version %s for %.0f%% of users",
                 os.getpid(), wanted["version"], 100 * fraction)  # fmt: skip
        return self.load(wanted), fraction
