"""`process_alive`: a pid that runs, one that is gone, and one that exited but is not yet reaped."""

import os
import subprocess
import sys

from shoprec.processes import process_alive


def test_a_running_process_is_alive_and_a_reaped_one_is_not() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert process_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not process_alive(child.pid)


def test_an_exited_process_not_yet_reaped_is_not_alive() -> None:
    """A service started by an earlier command is reaped by init, sometimes seconds late: until
    then it is a zombie, which `shoprec stop` must not wait for."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # it has exited; left unreaped
    os.kill(child.pid, 0)  # the pid still exists ...
    assert not process_alive(child.pid)  # ... but nothing runs there
    child.wait()
