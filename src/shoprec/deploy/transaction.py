"""One command at a time per environment, and the intent of each, kept until it is done.

Deploy, rollback, promote, start and stop hold their environment's lock (`flock` on
`.shoprec/deploy/<env>.lock`) from start to end: a second command waits, saying whom for, or
with `--no-wait` fails at once. The kernel releases the lock when its holder ends, however
it ends. Before a command changes anything it writes its intent (the journal,
`.shoprec/deploy/<env>.json`: what it moves where, and the last step it reached) and removes
it once done; a journal found while nobody holds the lock is what a killed command left
behind, and `shoprec.deploy.deployer` finishes it.
"""

import contextlib
import fcntl
import json
import logging
import os
import signal
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shoprec.deploy.errors import DeployError
from shoprec.errors import EXIT_REFUSED
from shoprec.runs import state_dir

DEPLOY_DIR = "deploy"
progress = logging.getLogger("shoprec.deploy")  # the logger `shoprec.deploy.services` uses

# The step boundaries a command passes, in order (a command skips those it has no use for).
LOCKED = "locked"  # holds the lock, has written nothing
BEGUN = "begun"  # the journal names what the command will do
TARGET_WRITTEN = "target-written"  # the service's control folder names the new version
SERVICE_STARTED = "service-started"  # a new service process runs (its pid file is written)
SERVED = "served"  # every worker serves the new version
ALIAS_MOVED = "alias-moved"  # the registry alias names the new version
CANARY_ENDED = "canary-ended"  # the canary alias is removed (a switch ends a canary)
RECORDED = "recorded"  # the history row is written
DONE = "done"  # the journal is removed
STEPS = (LOCKED, BEGUN, TARGET_WRITTEN, SERVICE_STARTED, SERVED, ALIAS_MOVED, CANARY_ENDED,
         RECORDED, DONE)  # fmt: skip


class EnvironmentBusy(DeployError):
    """Another command holds the environment's lock and the caller would not wait."""

    exit_code = EXIT_REFUSED


@dataclass
class Intent:
    """What a command is about to do to an environment: `action` (deploy, rollback, promote,
    canary or canary-rollback) moves `alias` from `previous` to `version`."""

    env: str
    action: str
    alias: str
    version: str | None
    previous: str | None
    command: str
    reason: str | None = None
    fraction: float | None = None  # a canary's share of users
    ends_canary: str | None = None  # the challenger whose canary the action ends
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    pid: int = field(default_factory=os.getpid)
    started: str = field(default_factory=lambda: _now())
    step: str = BEGUN

    def describe(self) -> str:
        """E.g. `shoprec deploy` (version 2 to production, pid 4242, started 12:00:01Z)."""
        target = f"version {self.version}" if self.version is not None else "no version"
        return (
            f"`shoprec {self.command}` ({self.action} of {target} to alias {self.alias}, "
            f"pid {self.pid}, started {self.started})"
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def deploy_dir() -> Path:
    """The folder holding each environment's lock file and journal."""
    return state_dir() / DEPLOY_DIR


def lock_path(env: str) -> Path:
    """The file whose `flock` serialises the commands acting on `env`."""
    return deploy_dir() / f"{env}.lock"


def journal_path(env: str) -> Path:
    """The file naming what the command acting on `env` is doing, while it does it."""
    return deploy_dir() / f"{env}.json"


_held: dict[str, str] = {}  # environment -> the command of this process holding its lock
_active: dict[str, Intent] = {}  # environment -> this process's intent under way


def _write_json(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(descriptor, "w") as stream:
        json.dump(record, stream)
    os.replace(temporary, path)


def holder(env: str) -> dict[str, Any] | None:
    """Who holds `env`'s lock now (pid, command, since), or None when nobody does."""
    path = lock_path(env)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                return json.loads(path.read_text() or "{}")
            except ValueError:
                return {}
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)


def _described(found: dict[str, Any] | None) -> str:
    if not found:
        return "another command"
    return (
        f"`shoprec {found.get('command', '?')}` (pid {found.get('pid', '?')}, "
        f"since {found.get('since', '?')})"
    )


@contextlib.contextmanager
def locked(env: str, command: str, wait: bool = True) -> Iterator[None]:
    """Hold `env`'s lock for the block: wait for it (saying for whom), or, with `wait` False,
    raise EnvironmentBusy at once. Re-entered freely within one process."""
    if env in _held:
        yield
        return
    path = lock_path(env)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = _described(_read_holder(path))
            if not wait:
                raise EnvironmentBusy(
                    f"{env}: {busy} is changing it; try again once it is done, or leave out "
                    "--no-wait to wait for it"
                ) from None
            progress.info(f"{env}: waiting for {busy} to finish")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        os.ftruncate(descriptor, 0)
        record = {"pid": os.getpid(), "command": command, "since": _now()}
        os.pwrite(descriptor, json.dumps(record).encode(), 0)
        _held[env] = command
        try:
            checkpoint(env, LOCKED)
            yield
        finally:
            _held.pop(env, None)
            _active.pop(env, None)
    finally:
        os.close(descriptor)  # releases the lock


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        found = json.loads(path.read_text() or "null")
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def begin(intent: Intent) -> Intent:
    """Record `intent` before acting on it (the caller holds the environment's lock)."""
    if intent.env not in _held:
        raise RuntimeError(f"{intent.env}: begin() outside locked()")
    _active[intent.env] = intent
    _write_json(journal_path(intent.env), asdict(intent))
    checkpoint(intent.env, BEGUN)
    return intent


def finish(env: str) -> None:
    """The command acting on `env` is done (or changed nothing): remove its journal."""
    _active.pop(env, None)
    journal_path(env).unlink(missing_ok=True)
    checkpoint(env, DONE)


def leftover(env: str) -> Intent | None:
    """The intent a command that ended before finishing left for `env`, if any.

    The caller holds the lock, or nobody does: a journal is then never a live command's.
    """
    if env in _active:
        return None
    try:
        record = json.loads(journal_path(env).read_text())
        return Intent(**record)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise DeployError(
            f"{journal_path(env)}: unreadable record of an interrupted command ({error}); "
            "check `shoprec status --registry` and remove the file"
        ) from error


def checkpoint(env: str, step: str) -> None:
    """Mark that the command acting on `env` reached `step`.

    The step is written to the journal, so that `shoprec status` can say where a killed
    command stopped. The fault-injection tests set `SHOPREC_KILL_AT_STEP` (`<step>` or
    `<command>:<step>`) to have the command kill itself (SIGKILL) right here.
    """
    intent = _active.get(env)
    if intent is not None and step not in (BEGUN, DONE):
        intent.step = step
        _write_json(journal_path(env), asdict(intent))
    from shoprec.settings import get_settings

    wanted = get_settings().kill_at_step
    if wanted and wanted in (step, f"{_held.get(env)}:{step}"):
        os.kill(os.getpid(), signal.SIGKILL)
