"""Kernels forked from a warm template are the kernels `python -m ipykernel_launcher` starts:
same library settings, environment, folder, signals and process group; their own random draws;
interrupted, killed and cleaned up the same way (shoprec.warm_kernels)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from shoprec import warm_kernels
from shoprec.errors import ConfigurationError
from shoprec.kernels import UnixSocketKernelManager, transport_settings

pytestmark = [
    pytest.mark.kernels,
    pytest.mark.skipif(
        not warm_kernels.FORKS,
        reason="kernels fork only where there are fork and pidfds (Linux 5.3+)",
    ),
]


@pytest.fixture(autouse=True)
def warm_kernels_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about forked kernels, whatever SHOPREC_WARM_KERNELS says around them."""
    monkeypatch.delenv("SHOPREC_WARM_KERNELS", raising=False)


STATE = textwrap.dedent(
    """
    import json, os, random, signal, sys, warnings
    import matplotlib, matplotlib.pyplot, numpy, pandas, scipy.sparse, scipy.stats, sklearn.base
    import numba
    from ipykernel.kernelapp import IPKernelApp

    shell, app = get_ipython(), IPKernelApp.instance()
    print(json.dumps({
        "pandas": pandas.describe_option(_print_desc=False),
        "numpy": [repr(numpy.get_printoptions()), numpy.geterr()],
        "rc": {name: repr(value) for name, value in matplotlib.rcParams.items()},
        "backend": matplotlib.get_backend(),
        "warning filters": [repr(each) for each in warnings.filters],
        "path": sys.path,
        "argv": [sys.argv[1], os.path.basename(sys.argv[2])[:3], *sys.argv[3:]],
        "cwd": os.getcwd(),
        "env": {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"},
        "flags": repr(sys.flags),
        "signals": {name: repr(signal.getsignal(getattr(signal, name)))
                    for name in ("SIGINT", "SIGTERM", "SIGCHLD", "SIGPIPE", "SIGHUP", "SIGUSR1")},
        "shoprec modules": sorted(m for m in sys.modules if m.split(".")[0] == "shoprec"),
        "leads its process group": os.getpgid(0) == os.getpid(),
        "stdin": os.readlink("/proc/self/fd/0").split(":")[0],
        "recursion limit": sys.getrecursionlimit(),
        "shell hooks": {event: len(hooks) for event, hooks in shell.events.callbacks.items()},
        "display hook": type(sys.displayhook).__name__,
        "main": sys.modules["__main__"].__name__,
        "watches its parent": app.parent_handle == os.getppid() and type(app.poller).__name__,
        "draws": [float(numpy.random.rand()), random.random()],
        "parent": os.getppid(),
    }))
    """
)


def run_in_kernel(manager: KernelManager, code: str, cwd: Path, **start) -> str:
    """Start a kernel with `manager`, run `code`, shut it down; what the code printed."""
    manager.start_kernel(
        cwd=str(cwd), extra_arguments=["--IPKernelApp.log_level=CRITICAL"], **start
    )
    client = manager.client()
    client.start_channels()
    printed: list[str] = []
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute_interactive(
            code,
            timeout=60,
            output_hook=lambda message: (
                printed.append(message["content"].get("text", ""))
                if message["msg_type"] == "stream"
                else None
            ),
        )
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        client.stop_channels()
        manager.shutdown_kernel()
    return "".join(printed)


def launched() -> KernelManager:
    """jupyter_client's own manager and provisioner: a kernel as `ipykernel_launcher` starts it."""
    return KernelManager(**transport_settings())


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("kernel-folder")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SHOPREC_WARM_KERNELS", raising=False)
        return {
            name: json.loads(run_in_kernel(make(), STATE, folder))
            for name, make in (
                ("launched", launched),
                ("forked", UnixSocketKernelManager),
                ("forked again", UnixSocketKernelManager),
            )
        }


def test_the_kernels_are_forked_from_one_template(states: dict[str, dict]) -> None:
    assert states["launched"]["parent"] == os.getpid()
    template = states["forked"]["parent"]
    assert template != os.getpid()
    assert states["forked again"]["parent"] == template
    assert "serve" in Path(f"/proc/{template}/cmdline").read_text()


@pytest.mark.parametrize(
    "aspect",
    [
        "pandas",
        "numpy",
        "rc",
        "backend",
        "warning filters",
        "path",
        "argv",
        "cwd",
        "env",
        "flags",
        "signals",
        "shoprec modules",
        "leads its process group",
        "stdin",
        "recursion limit",
        "shell hooks",
        "display hook",
        "main",
        "watches its parent",
    ],
)
def test_a_forked_kernel_is_set_up_as_a_launched_one(states: dict[str, dict], aspect: str) -> None:
    assert states["forked"][aspect] == states["launched"][aspect]


def test_unseeded_draws_differ_between_forked_kernels(states: dict[str, dict]) -> None:
    numpy_draws, python_draws = zip(*(state["draws"] for state in states.values()), strict=True)
    assert len(set(numpy_draws)) == 3 and len(set(python_draws)) == 3


def parent_pid(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def gone(pid: int) -> bool:
    """Whether `pid` has exited (a zombie waiting for its parent counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def parent_of_kernel(tmp_path: Path, **start) -> int:
    return int(
        run_in_kernel(
            UnixSocketKernelManager(), "import os; print(os.getppid())", tmp_path, **start
        )
    )


def test_another_environment_gets_a_template_of_its_own(tmp_path: Path) -> None:
    first = parent_of_kernel(tmp_path)
    assert parent_of_kernel(tmp_path) == first
    env = {**os.environ, "TEMPLATE_TEST_VARIABLE": "another"}
    other = parent_of_kernel(tmp_path, env=env)
    assert other not in (first, os.getpid())
    assert parent_of_kernel(tmp_path, env=env) == other
    assert (
        run_in_kernel(
            UnixSocketKernelManager(),
            "import os; print(os.environ['TEMPLATE_TEST_VARIABLE'])",
            tmp_path,
            env=env,
        )
        == "another\n"
    )


def test_kernels_of_other_shoprec_and_mlflow_settings_share_the_template_and_see_their_own(
    tmp_path: Path,
) -> None:
    first = parent_of_kernel(tmp_path)
    for project in ("one", "two"):
        store = f"sqlite:///{tmp_path / project / 'mlflow.db'}"
        env = {**os.environ, "SHOPREC_PROJECT_DIR": str(tmp_path / project),
               "MLFLOW_TRACKING_URI": store}  # fmt: skip
        assert parent_of_kernel(tmp_path, env=env) == first
        printed = run_in_kernel(
            UnixSocketKernelManager(),
            "import os; print(os.environ['SHOPREC_PROJECT_DIR'], "
            "os.environ['MLFLOW_TRACKING_URI'])",
            tmp_path,
            env=env,
        )
        assert printed == f"{tmp_path / project} {store}\n"


def test_a_forked_kernel_is_interrupted_and_killed_as_a_launched_one(tmp_path: Path) -> None:
    manager = UnixSocketKernelManager()
    manager.start_kernel(cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        message = client.execute("import time; print('sleeping', flush=True); time.sleep(60)")
        while True:  # interrupt the sleep itself, not the kernel on its way to it
            output = client.get_iopub_msg(timeout=30)
            if output["msg_type"] == "stream" and "sleeping" in output["content"]["text"]:
                break
        time.sleep(0.2)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == message
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        client.execute("import os; os._exit(3)")
        deadline = time.monotonic() + 30
        while manager.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not manager.is_alive()
        assert manager.provisioner.process.poll() == 3
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    killed = UnixSocketKernelManager()
    killed.start_kernel(cwd=str(tmp_path))
    pid = killed.provisioner.pid
    killed.shutdown_kernel(now=True)
    assert not killed.is_alive()
    assert gone(pid)


def test_kernels_end_with_the_process_that_started_them(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys, time
        from shoprec.kernels import UnixSocketKernelManager
        manager = UnixSocketKernelManager()
        manager.start_kernel(cwd=sys.argv[1])
        manager.client().wait_for_ready(timeout=60)
        print(manager.provisioner.pid, flush=True)
        time.sleep(600)
        """
    )
    command = [sys.executable, "-c", script, str(tmp_path)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as starter:
        try:
            kernel = int(starter.stdout.readline())
            template = parent_pid(kernel)
        finally:
            starter.kill()
    assert template != starter.pid  # forked, not launched
    deadline = time.monotonic() + 30
    while not (gone(kernel) and gone(template)):
        assert time.monotonic() < deadline, "the kernel or its template outlived their starter"
        time.sleep(0.1)


def test_a_template_that_would_change_what_a_kernel_shows_is_not_used(tmp_path: Path) -> None:
    noisy = tmp_path / "site" / "numba"
    noisy.mkdir(parents=True)
    (noisy / "__init__.py").write_text("print('numba here')\n")
    env = {**os.environ, "PYTHONPATH": str(noisy.parent)}
    assert parent_of_kernel(tmp_path, env=env) == os.getpid()  # launched as usual


def test_a_template_that_died_is_replaced(tmp_path: Path) -> None:
    env = {**os.environ, "TEMPLATE_TEST_VARIABLE": "replaced"}
    first = parent_of_kernel(tmp_path, env=env)
    assert first != os.getpid()
    os.kill(first, signal.SIGKILL)
    # the template is this process's child: wait for its exit without reaping it (a zombie's
    # /proc entry shows before its other threads are done and its exit can be collected)
    os.waitid(os.P_PID, first, os.WEXITED | os.WNOWAIT)
    second = parent_of_kernel(tmp_path, env=env)
    assert second not in (first, os.getpid())


def test_the_least_recently_used_idle_template_makes_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(warm_kernels, "TEMPLATES_PER_PROCESS", 1)
    monkeypatch.setattr(warm_kernels, "_templates", {})  # the worker's others serve other tests
    first = parent_of_kernel(tmp_path, env={**os.environ, "TEMPLATE_TEST_VARIABLE": "first"})
    second = parent_of_kernel(tmp_path, env={**os.environ, "TEMPLATE_TEST_VARIABLE": "second"})
    assert os.getpid() not in (first, second) and first != second
    assert gone(first)  # ended to make room: its kernels had all exited
    busy = UnixSocketKernelManager()
    busy.start_kernel(cwd=str(tmp_path), env={**os.environ, "TEMPLATE_TEST_VARIABLE": "busy"})
    try:
        assert parent_pid(busy.provisioner.pid) not in (second, os.getpid())
        other = {**os.environ, "TEMPLATE_TEST_VARIABLE": "other"}
        assert parent_of_kernel(tmp_path, env=other) == os.getpid()  # no idle template to end
    finally:
        busy.shutdown_kernel(now=True)
        warm_kernels.close_templates()  # this test's own


def test_shoprec_warm_kernels_false_launches_kernels_as_usual(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPREC_WARM_KERNELS", "false")
    assert parent_of_kernel(tmp_path) == os.getpid()


def test_a_setting_that_is_not_a_boolean_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOPREC_WARM_KERNELS", "maybe")
    with pytest.raises(ConfigurationError, match="SHOPREC_WARM_KERNELS='maybe'.*boolean"):
        UnixSocketKernelManager().start_kernel()
