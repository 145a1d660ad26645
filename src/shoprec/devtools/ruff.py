"""ruff's formatter on text, with the project's configuration: what the ruff-format hook writes."""

import subprocess
from pathlib import Path

from shoprec.errors import ShoprecError


class FormatError(ShoprecError):
    """ruff could not format the text; `detail` is ruff's own message."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"ruff could not format {path.as_posix()}: {detail}")
        self.detail = detail


def format_text(text: str, path: Path, root: Path) -> str:
    """`text` as `ruff format` writes the file at `path` (relative to the repository `root`,
    whose configuration applies; a `.ipynb` path formats a notebook's code cells).

    Raises FormatError with ruff's message (file, line, column) when the code does not parse.
    """
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError as error:
        raise ShoprecError("formatting needs ruff, which is missing: run make setup") from error
    result = subprocess.run(
        [find_ruff_bin(), "format", "--stdin-filename", path.as_posix(), "-"],
        input=text,
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )
    if result.returncode != 0:
        raise FormatError(path, result.stderr.strip())
    return result.stdout
