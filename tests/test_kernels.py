"""Kernels are reached over private Unix sockets, never TCP ports another process can take."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import nbval.kernel
import pytest

from shoprec import kernels
from shoprec.kernels import UnixSocketKernelManager


def test_a_kernel_answers_over_unix_sockets_in_a_folder_only_this_user_can_enter() -> None:
    manager = UnixSocketKernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    try:
        client.start_channels()
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive("6 * 7", timeout=60)
        assert reply["content"]["status"] == "ok"
        info = manager.get_connection_info()
        assert info["transport"] == "ipc"
        folder = Path(info["ip"]).parent
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        channels = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
        sockets = [Path(f"{info['ip']}-{info[channel]}") for channel in channels]
        assert all(stat.S_ISSOCK(path.stat().st_mode) for path in sockets)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert not any(path.exists() for path in sockets)  # cleaned up with the kernel


def test_two_kernels_never_share_a_socket_path() -> None:
    assert kernels.socket_prefix() != kernels.socket_prefix()


def test_a_deep_tmpdir_still_leaves_room_for_the_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 90)
    deep.mkdir()
    code = "from shoprec import kernels; print(kernels.socket_prefix())"
    environment = {**os.environ, "TMPDIR": str(deep)}
    prefix = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert len(prefix) + len("-99") <= kernels.SOCKET_PATH_LIMIT
    assert not Path(prefix).parent.exists()  # removed when the process exited


def test_nbval_starts_its_kernels_with_the_unix_socket_manager(request: pytest.FixtureRequest):
    conftest = Path(__file__).resolve().parents[1] / "notebooks" / "conftest.py"
    loaded = {
        getattr(plugin, "__file__", None) for plugin in request.config.pluginmanager.get_plugins()
    }
    if str(conftest) not in loaded:
        pytest.skip("the notebooks are not collected in this run (make test-fast collects both)")
    assert nbval.kernel.KernelManager is UnixSocketKernelManager
