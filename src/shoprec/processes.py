"""Whether a process is still running, by pid (for pid files, run records and service workers)."""

import os
from pathlib import Path

# States in /proc/<pid>/stat of a process that has exited and only waits to be reaped.
_EXITED_STATES = frozenset("ZX")


def process_alive(pid: int) -> bool:
    """Whether a process with this pid is running (one we may not signal counts as running).

    A zombie (exited, not yet reaped by its parent) is not running: a service started by an
    earlier command is reaped by init, which may take seconds in a container.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _state(pid) not in _EXITED_STATES


def _state(pid: int) -> str | None:
    """The one-letter state /proc gives the process (None where there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name, in parentheses, may hold spaces and parentheses: the state follows the last.
    return stat[stat.rindex(")") + 2 :][:1] or None
