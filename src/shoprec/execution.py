"""Running one notebook headless with papermill: the one place shoprec calls it."""

from pathlib import Path
from typing import Any

# The kernel serves one notebook on loopback; its "TCP without encryption" warning is noise.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
KERNEL_NAME = "python3"


def execute_notebook(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    progress_bar: bool | dict[str, Any] = False,
) -> None:
    """Execute `notebook` with `parameters` into `output`, in the notebook's own folder.

    Raises papermill's PapermillExecutionError naming the failed cell; the partially executed
    notebook is kept at `output`.
    """
    import papermill

    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=parameters,
        cwd=str(Path(notebook).parent),
        progress_bar=progress_bar,
        kernel_name=KERNEL_NAME,
        extra_arguments=KERNEL_ARGUMENTS,
    )
