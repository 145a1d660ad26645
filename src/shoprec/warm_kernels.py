"""IPython kernels forked from a warm template process, so their imports are paid once.

A fresh kernel spends about 2 s of CPU before its first cell: starting the interpreter, importing
ipykernel and then numpy, pandas, SciPy, scikit-learn, numba and matplotlib. `shoprec pipeline`
starts four kernels, `make test` about 140. Here the first kernel a process asks for starts a
*template*: a process of the same interpreter, with the same environment, that imports those
libraries and then waits. Each kernel is a fork of it (copy-on-write), that sets the kernel's own
environment and working folder and runs ipykernel exactly as `python -m ipykernel_launcher` does.

What a fork keeps is only what the template imported before any kernel existed: third-party
libraries, imported as a kernel imports them (ipykernel's matplotlib backend and parent pid set,
`get_ipython()` answering, the kernel's stream encoding), whose import depends on nothing but the
interpreter and the environment. So a template serves only kernels whose command is the same
interpreter's `-m ipykernel_launcher` and whose environment equals the template's except for
`PER_KERNEL_VARIABLES` and the settings of shoprec and MLflow (`SHOPREC_*`, `MLFLOW_*`: no
preloaded library reads them, so kernels of different projects share a template); any other kernel
gets a template of its own (at most `TEMPLATES_PER_PROCESS`, the least recently used idle one
ending to make room) or is launched as usual. shoprec's own modules are never preloaded: a kernel
imports them from the files as they are when it starts. If the imports print or warn (a launched
kernel would show it in the notebook), the template refuses and kernels are launched as usual. Each
kernel reseeds numpy's global generator, so unseeded draws differ between kernels as they do
between launched ones, and puts the warning filters the libraries added before ipykernel's, as
importing them in a launched kernel would.

A forked kernel behaves as a launched one for jupyter_client: it leads its own process group
(interrupts and kills reach it and its children), its exit code is seen, and it exits when the
template does. The template exits when the process that started it closes the connection (at
exit, or when it dies), killing the kernels still running. `SHOPREC_WARM_KERNELS=false` turns
it all off. tests/test_warm_kernels.py holds a forked kernel to a launched one.
"""

import asyncio
import atexit
import contextlib
import io
import json
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import Any

from jupyter_client.connect import KernelConnectionInfo
from jupyter_client.provisioning import LocalProvisioner

from shoprec.errors import ShoprecError

KERNEL_MODULE = "ipykernel.kernelapp"
PRELOADED = (
    KERNEL_MODULE,
    "numpy",
    "numpy.random",
    "pandas",
    "scipy.sparse",
    "scipy.stats",
    "sklearn.base",
    "sklearn.model_selection",
    "numba",
    "matplotlib",
    "matplotlib.font_manager",
)
"""What the template imports. Not `matplotlib.pyplot`: its inline backend hooks into the IPython
shell of the process that imports it, which only a kernel has."""

PER_KERNEL_VARIABLES = frozenset({"JPY_PARENT_PID", "JPY_SESSION_NAME", "PYTEST_CURRENT_TEST"})
"""Variables that may differ between the template and a kernel it serves: none of the preloaded
libraries reads them (jupyter_client sets the first two for each kernel, pytest the third for
each test)."""

UNREAD_PREFIXES = ("MLFLOW_",)
"""Besides shoprec's own (`SHOPREC_`), the prefixes of variables that only libraries a template
never imports read (MLflow's): they too may differ between the template and its kernels."""

TEMPLATES_PER_PROCESS = 4
LAUNCHER = ("-m", "ipykernel_launcher")
FORKS = hasattr(os, "fork") and hasattr(os, "pidfd_open")
"""Linux: the template watches its kernels through pidfds (Linux 5.3 and later)."""


# --- The template process ------------------------------------------------------------------


class _KernelShell:
    """What `get_ipython()` is, for a library that asks at import whether it runs in a kernel."""

    kernel = None


class _KernelStream(io.StringIO):
    """What `sys.stdout` and `sys.stderr` are in a kernel, for a library that reads their
    encoding at import (pandas' `display.encoding`)."""

    encoding = "UTF-8"


def _preload() -> str | None:
    """Import `PRELOADED` as they would be imported in a kernel: matplotlib set to the inline
    backend (ipykernel sets it before any cell runs), `get_ipython()` answering (pandas chooses
    its default `display.max_columns` by whether it runs in a kernel) and the kernel's streams'
    encoding. Returns why the imports cannot be shared, if one printed or warned (a launched
    kernel would show that in the notebook)."""
    import builtins
    import importlib
    import warnings

    global _KERNEL_FILTERS
    started_with = dict(os.environ)
    # ipykernel reads the parent to watch at import: the template, which each kernel is told
    os.environ["JPY_PARENT_PID"] = str(os.getpid())
    if not os.environ.get("MPLBACKEND"):
        os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    streams, show = (sys.stdout, sys.stderr), warnings.showwarning
    sys.stdout, sys.stderr = _KernelStream(), _KernelStream()
    builtins.get_ipython = _KernelShell
    warned: list[str] = []
    warnings.showwarning = lambda message, *_, **__: warned.append(str(message))
    try:  # the filters the imports add stay, as they would in a kernel
        for name in PRELOADED:
            importlib.import_module(name)
            if name == KERNEL_MODULE:
                _KERNEL_FILTERS = len(warnings.filters)
        printed = sys.stdout.getvalue() + sys.stderr.getvalue()
    finally:
        del builtins.get_ipython
        sys.stdout, sys.stderr = streams
        warnings.showwarning = show
    os.environ.clear()
    os.environ.update(started_with)
    if warned or printed:
        said = printed or warned[0]
        return f"importing {', '.join(PRELOADED)} said: {said.strip()[:300]}"
    return None


_KERNEL_FILTERS = 0
"""How many warning filters the template had once it imported ipykernel (the interpreter's own
and those a launched kernel has before its first cell)."""


def _library_filters_after_the_kernels(app_class: type) -> None:
    """Order the warning filters as in a launched kernel that then imports the libraries: the
    filters their imports added first, then those ipykernel adds as it starts, then those it
    had from its own import and the interpreter."""
    import warnings

    initialize = app_class.initialize

    def initialize_then_reorder(app: Any, argv: Any = None) -> None:
        before = list(warnings.filters)
        initialize(app, argv)
        added = warnings.filters[: len(warnings.filters) - len(before)]
        libraries = before[: len(before) - _KERNEL_FILTERS]
        kernel = before[len(before) - _KERNEL_FILTERS :]
        warnings.filters[:] = libraries + added + kernel
        warnings._filters_mutated()

    app_class.initialize = initialize_then_reorder


def _run_kernel(
    connection: socket.socket, stdin: tuple[int, int], arguments: list[str], env: dict, cwd: str
) -> None:
    """In a fresh fork: become the kernel `python -m ipykernel_launcher ARGUMENTS` would be."""
    connection.close()
    os.setsid()  # its own process group, as jupyter_client starts a kernel
    os.dup2(stdin[0], 0)  # a pipe nobody writes to, as jupyter_client gives a launched kernel
    os.close(stdin[0])
    os.close(stdin[1])
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for name in [name for name in sys.modules if name == "shoprec" or name.startswith("shoprec.")]:
        del sys.modules[name]
    sys.modules["numpy.random"].seed()  # unseeded draws differ between kernels, as when launched
    import ipykernel_launcher
    from ipykernel import kernelapp

    sys.argv = [ipykernel_launcher.__file__, *arguments]
    _library_filters_after_the_kernels(kernelapp.IPKernelApp)
    code = 0
    try:
        kernelapp.launch_new_instance()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:  # noqa: BLE001 - printed as a kernel's crash would be
        import traceback

        traceback.print_exc()
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve(connection_fd: int) -> None:
    """The template's loop: fork a kernel per request, report each kernel's exit, and on
    end-of-file from the parent kill the kernels left and exit."""
    connection = socket.socket(fileno=connection_fd)

    def send(message: dict[str, Any]) -> None:
        connection.sendall(json.dumps(message).encode() + b"\n")

    if sys.path and sys.path[0] == "":  # as ipykernel_launcher: the folder is not importable
        del sys.path[0]
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError as error:  # a Linux older than 5.3
        send({"refused": f"this system has no pidfds to watch kernels with ({error})"})
        return
    refused = _preload()
    if refused:
        send({"refused": refused})
        return
    selector = selectors.DefaultSelector()
    selector.register(connection, selectors.EVENT_READ)
    kernels: dict[int, tuple[int, int]] = {}  # pidfd -> pid, the write end of its stdin
    pending = b""
    send({"ready": os.getpid()})
    while True:
        for key, _ in selector.select():
            if key.fileobj is connection:
                chunk = connection.recv(1 << 16)
                if not chunk:
                    for pid, _ in kernels.values():
                        with contextlib.suppress(OSError):
                            os.killpg(pid, signal.SIGKILL)
                    return
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    request = json.loads(line)
                    stdin = os.pipe()
                    pid = os.fork()
                    if pid == 0:
                        _run_kernel(
                            connection, stdin, request["arguments"], request["env"], request["cwd"]
                        )
                    os.close(stdin[0])
                    pidfd = os.pidfd_open(pid)
                    kernels[pidfd] = pid, stdin[1]
                    selector.register(pidfd, selectors.EVENT_READ)
                    send({"forked": pid})
            else:
                pidfd = key.fd
                pid, stdin = kernels.pop(pidfd)
                selector.unregister(pidfd)
                os.close(pidfd)
                os.close(stdin)
                _, status = os.waitpid(pid, 0)
                send({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


# --- The parent's side ---------------------------------------------------------------------


class ForkedKernel:
    """A kernel forked by a template, with the part of `subprocess.Popen` jupyter_client uses."""

    stdin = stdout = stderr = None

    def __init__(self, template: "KernelTemplate", pid: int) -> None:
        self._template = template
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The kernel's exit code once it has exited, else None."""
        if self.returncode is None:
            self.returncode = self._template.exit_code(self.pid, timeout=0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the kernel to exit; its exit code."""
        if self.returncode is None:
            code = self._template.exit_code(self.pid, timeout=timeout)
            if code is None:
                raise subprocess.TimeoutExpired(f"kernel {self.pid}", timeout or 0)
            self.returncode = code
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Send `signum` to the kernel, unless it has exited."""
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class TemplateUnavailable(ShoprecError, RuntimeError):
    """A template could not start, or has exited."""


class KernelTemplate:
    """A template process, started with one interpreter and environment, forking kernels."""

    READY_TIMEOUT = 120.0

    def __init__(self, executable: str, env: Mapping[str, str], cwd: str) -> None:
        ours, theirs = socket.socketpair()
        serve_code = "import sys; from shoprec.warm_kernels import serve; serve(int(sys.argv[1]))"
        self.process = subprocess.Popen(
            [executable, "-c", serve_code, str(theirs.fileno())],
            env=dict(env),
            cwd=cwd,
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        theirs.close()
        self._connection = ours
        self._sending = threading.Lock()
        self._changed = threading.Condition()
        self._replies: list[dict[str, Any]] = []
        self._forked: set[int] = set()
        self._exited: dict[int, int] = {}
        self._closed = False
        threading.Thread(target=self._read, daemon=True, name="kernel-template").start()
        try:
            self.pid = self._reply("ready", timeout=self.READY_TIMEOUT)
        except TemplateUnavailable:
            self.close()
            raise

    def _read(self) -> None:
        """Sort the template's messages: replies to requests, and kernels' exits."""
        pending = b""
        try:
            while chunk := self._connection.recv(1 << 16):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    with self._changed:
                        if "exited" in message:
                            self._exited[message["exited"]] = message["code"]
                        else:
                            self._replies.append(message)
                        self._changed.notify_all()
        except OSError:
            pass
        with self._changed:
            self._closed = True
            self._changed.notify_all()

    def _reply(self, kind: str, timeout: float | None = None) -> int:
        with self._changed:
            self._changed.wait_for(lambda: self._replies or self._closed, timeout)
            message = self._replies.pop(0) if self._replies else {}
        if kind not in message:
            why = message.get("refused") or "it exited or did not answer"
            raise TemplateUnavailable(f"kernel template (pid {self.process.pid}): {why}")
        return message[kind]

    def fork(self, arguments: list[str], env: Mapping[str, str], cwd: str) -> ForkedKernel:
        """A new kernel: `python -m ipykernel_launcher ARGUMENTS` in `cwd` with `env`."""
        env = {**env, "JPY_PARENT_PID": str(self.pid)}  # the kernel exits when the template does
        request = {"arguments": arguments, "env": env, "cwd": cwd}
        with self._sending:
            try:
                self._connection.sendall(json.dumps(request).encode() + b"\n")
            except OSError as error:
                why = f"kernel template (pid {self.process.pid}): {error}"
                raise TemplateUnavailable(why) from error
            pid = self._reply("forked")
        self._forked.add(pid)
        return ForkedKernel(self, pid)

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """`pid`'s exit code once it has exited (waiting up to `timeout` s), else None."""
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exited or self._closed, timeout)
            if pid in self._exited:
                return self._exited[pid]
            return -signal.SIGKILL if self._closed else None  # the template killed it

    @property
    def idle(self) -> bool:
        """Whether every kernel it forked has exited."""
        with self._changed:
            return self._forked <= self._exited.keys()

    @property
    def alive(self) -> bool:
        """Whether the template still forks kernels."""
        return not self._closed and self.process.poll() is None

    def close(self) -> None:
        """End the template, and any kernel it still runs."""
        with contextlib.suppress(OSError):
            self._connection.shutdown(socket.SHUT_RDWR)  # the template reads end-of-file
        self._connection.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_log = logging.getLogger(__name__)
_templates: dict[tuple, KernelTemplate | None] = {}
"""This process's templates by interpreter and environment, least recently used first; None
where one could not start."""
_templates_lock = threading.Lock()


def _template_for(executable: str, env: Mapping[str, str], cwd: str) -> KernelTemplate | None:
    """The template for kernels of `executable` with `env`, started if need be (ending the least
    recently used idle template when there are `TEMPLATES_PER_PROCESS`); None where kernels
    must be launched as usual."""
    from shoprec.settings import PREFIX  # here: a template imports this module, never settings

    unread = (PREFIX, *UNREAD_PREFIXES)
    key = (
        executable,
        tuple(
            sorted(
                (name, value)
                for name, value in env.items()
                if name not in PER_KERNEL_VARIABLES and not name.startswith(unread)
            )
        ),
    )
    with _templates_lock:
        if key in _templates:
            template = _templates.pop(key)
            _templates[key] = template  # now the most recently used
            if template is None or template.alive:
                return template
            template.close()  # it died: start another
        if not _templates:
            atexit.register(close_templates)
        started = [k for k, template in _templates.items() if template is not None]
        if len(started) >= TEMPLATES_PER_PROCESS:
            idle = [k for k in started if _templates[k].idle]
            if not idle:
                return None
            _templates.pop(idle[0]).close()
        try:
            _templates[key] = KernelTemplate(executable, env, cwd)
        except TemplateUnavailable as error:
            _log.warning("kernels are launched, not forked: %s", error)
            _templates[key] = None
        return _templates[key]


def close_templates() -> None:
    """End every template this process started."""
    with _templates_lock:
        for template in _templates.values():
            if template is not None:
                template.close()
        _templates.clear()


class WarmKernelProvisioner(LocalProvisioner):
    """jupyter_client's local provisioner, forking IPython kernels from a warm template."""

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> KernelConnectionInfo:
        """Fork the kernel `cmd` describes if a template can serve it, else launch it."""
        env = dict(kwargs.get("env") or os.environ)
        cwd = str(kwargs.get("cwd") or os.getcwd())
        if FORKS and tuple(cmd[1:3]) == LAUNCHER:
            template = await asyncio.to_thread(_template_for, cmd[0], env, cwd)
            if template is not None:
                try:
                    self.process = await asyncio.to_thread(template.fork, cmd[3:], env, cwd)
                except TemplateUnavailable as error:
                    _log.warning("kernel launched, not forked: %s", error)
                else:
                    self.pid = self.pgid = self.process.pid
                    self.cwd = cwd
                    return self.connection_info
        return await super().launch_kernel(cmd, **kwargs)
