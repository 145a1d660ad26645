"""Jupyter kernel managers that reach their kernel over Unix sockets in a private folder.

jupyter_client's default (TCP on 127.0.0.1) picks five free ports, closes them, and lets the
kernel bind them a second later; another process can take one in between (another kernel's
pick, any outgoing connection), and the kernel dies with "Address already in use". With two
pytest workers starting kernels and services that was about 1 kernel start in 120. Unix
sockets have no such window and no port for another local user to reach: each kernel's
sockets live in a folder of this process (mode 0700) under a name no other kernel uses.
Elsewhere than POSIX the managers keep TCP. On Linux they fork their kernels from a warm
template (shoprec.warm_kernels) unless SHOPREC_WARM_KERNELS=false.
"""

import atexit
import os
import shutil
import tempfile
import uuid
from functools import cache

from jupyter_client.manager import AsyncKernelManager, KernelManager

UNIX_SOCKETS = os.name == "posix"
SOCKET_PATH_LIMIT = 100
"""Room for a Unix socket's path (the kernel appends `-<n>`; Linux allows 107 bytes)."""


@cache
def _socket_folder() -> str:
    """This process's private folder for kernel sockets, removed when the process exits."""
    folder = tempfile.mkdtemp(prefix="shoprec-kernels-")
    if len(folder) + len("/kernel-0123456789ab-99") > SOCKET_PATH_LIMIT:  # a deep $TMPDIR
        shutil.rmtree(folder)
        folder = tempfile.mkdtemp(prefix="shoprec-kernels-", dir="/tmp")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def socket_prefix() -> str:
    """A path no other kernel uses, for one kernel's sockets (`<prefix>-1` ... `<prefix>-5`)."""
    return os.path.join(_socket_folder(), f"kernel-{uuid.uuid4().hex[:12]}")


def transport_settings() -> dict[str, str]:
    """The `transport` and `ip` of a new kernel manager: private Unix sockets where there are
    any, else nothing (jupyter_client's TCP)."""
    return {"transport": "ipc", "ip": socket_prefix()} if UNIX_SOCKETS else {}


class _PrivateKernels:
    """What both managers add to jupyter_client's: private Unix sockets, and kernels forked
    from a warm template (unless SHOPREC_WARM_KERNELS=false)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**{**transport_settings(), **kwargs})

    async def _async_pre_start_kernel(self, **kwargs):
        from shoprec.settings import get_settings
        from shoprec.warm_kernels import WarmKernelProvisioner

        if self.provisioner is None and get_settings().warm_kernels:
            self.kernel_id = self.kernel_id or kwargs.pop("kernel_id", None) or str(uuid.uuid4())
            self.provisioner = WarmKernelProvisioner(
                kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self
            )
        return await super()._async_pre_start_kernel(**kwargs)


class UnixSocketKernelManager(_PrivateKernels, KernelManager):
    """jupyter_client's `KernelManager`, over private Unix sockets, its kernel forked warm."""


class AsyncUnixSocketKernelManager(_PrivateKernels, AsyncKernelManager):
    """jupyter_client's `AsyncKernelManager` (papermill's), the same way."""
