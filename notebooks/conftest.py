"""How nbval shares the notebooks between pytest-xdist workers (`--dist loadgroup`), and how
it reaches its kernels.

The pipeline notebooks hand results to each other through `runs/notebooks/` (04_evaluate reads
the model 03_train wrote), so they form one group that one worker runs in order, 01 to 04.
Every other notebook is a group of its own: its cells run in order on one worker.

nbval's kernels talk over private Unix sockets as papermill's do (shoprec.kernels): with TCP,
a kernel started while the other worker starts one could lose a port and die before its first
cell ("Kernel died before replying to kernel_info").
"""

from pathlib import Path

import nbval.kernel
import pytest

from shoprec.kernels import UnixSocketKernelManager
from shoprec.runs import PIPELINE_NOTEBOOKS

PIPELINE_GROUP = "pipeline-notebooks"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give each notebook's cells their xdist group."""
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix != ".ipynb":
            continue
        pipeline = path.parent.name == "notebooks" and path.stem in PIPELINE_NOTEBOOKS
        group = PIPELINE_GROUP if pipeline else f"notebook-{path.stem}"
        item.add_marker(pytest.mark.xdist_group(group))


def pytest_configure(config: pytest.Config) -> None:
    """nbval starts its kernels with the `KernelManager` its module names: make it ours."""
    nbval.kernel.KernelManager = UnixSocketKernelManager
