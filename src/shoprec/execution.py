"""Running one notebook headless with papermill: the one place shoprec calls it."""

import re
from pathlib import Path
from typing import Any

from shoprec.errors import ShoprecError

# The kernel serves one notebook over private Unix sockets (shoprec.kernels). Its own log says
# nothing about the notebook (what a cell raises reaches the notebook and NotebookFailed), and
# when jupyter_client interrupts it on every shutdown it may log "KeyboardInterrupt caught".
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]
KERNEL_NAME = "python3"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


class NotebookFailed(ShoprecError):
    """A cell of a notebook raised; the partially executed notebook is kept."""

    def __init__(
        self, notebook: Path, output: Path, cell: int, execution_count: int | None, error: str
    ) -> None:
        self.notebook = Path(notebook)
        self.output = Path(output)
        self.cell = cell
        """The failed cell's number, counted from 1 as JupyterLab counts cells."""
        self.execution_count = execution_count
        self.error = error
        """`Name: message` of the exception the cell raised, without terminal colours."""
        super().__init__(
            f"notebook {self.notebook.name} failed in cell {cell} "
            f"(execution count {execution_count}): {error}\n"
            f"the partially executed notebook is kept at {self.output}"
        )

    @property
    def interrupted(self) -> bool:
        """Whether the cell stopped because Ctrl-C reached the kernel."""
        return self.error.startswith("KeyboardInterrupt")


def execute_notebook(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    progress_bar: bool | dict[str, Any] = False,
    cwd: Path | None = None,
) -> None:
    """Execute `notebook` with `parameters` into `output`, in `cwd` (default: the notebook's
    own folder).

    Each cell's stdout and stderr are kept as one output each (stdout first when they follow each
    other), so the same code gives the same outputs however the kernel batched its writes.
    Raises NotebookFailed naming the failed cell; the partially executed notebook is kept at
    `output`.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from shoprec.kernels import AsyncUnixSocketKernelManager

    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            cwd=str(cwd or Path(notebook).parent),
            progress_bar=progress_bar,
            kernel_name=KERNEL_NAME,
            kernel_manager_class=AsyncUnixSocketKernelManager,
            extra_arguments=KERNEL_ARGUMENTS,
            coalesce_streams=True,
        )
    except PapermillExecutionError as error:
        message = ANSI_ESCAPE.sub("", f"{error.ename}: {error.evalue}")
        raise NotebookFailed(
            notebook, output, error.cell_index + 1, error.exec_count, message
        ) from None
