"""Commands for the data-science loop: `extract`, `execute`, `nbclean`, `nblint` and `nbdiff`.

The benchmarks are scripts, not commands: `benchmarks/`, one `make benchmark-*` target each."""

from pathlib import Path

from shoprec.commands import Subparsers, add_command


def register(subparsers: Subparsers) -> None:
    """Add `extract`, `execute`, `nbclean`, `nblint` and `nbdiff`."""
    parser = add_command(
        subparsers,
        "extract",
        "shoprec.devtools.extract:extract_command",
        help="write modules from notebook cells tagged export:<module>",
        description="Write src/shoprec/<module>.py from the notebook cells tagged "
        "export:<module>. With --check, write nothing: name each module that differs from its "
        "notebook cells (and the cell to edit) and exit 1.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; list modules that do not match the notebooks and exit 1 if any",
    )
    parser.add_argument(
        "--root",
        type=Path,
        default=Path("."),
        metavar="DIR",
        help="repository root holding notebooks/ and src/shoprec/ (default: .)",
    )

    parser = add_command(
        subparsers,
        "execute",
        "shoprec.devtools.execute:execute_command",
        help="re-execute notebooks in place, top to bottom, so their committed outputs are current",
        description="Run each notebook with its default parameters (smoke profile, fixed seeds) "
        "in its own folder and replace it with the executed copy, cleaned as the pre-commit hook "
        "cleans it: the same code gives the same file. A notebook whose cell fails is left "
        "unchanged (the partial run is kept aside and named). The pipeline notebooks run in "
        "name order; the others run JOBS at a time.",
    )
    parser.add_argument(
        "notebooks",
        nargs="*",
        type=Path,
        metavar="NOTEBOOK",
        help="notebooks to execute (default: every notebook below ROOT/notebooks)",
    )
    parser.add_argument(
        "-j", "--jobs", type=int, default=0, help="notebooks run at once (default: one per core)"
    )
    parser.add_argument(
        "--root", type=Path, default=Path("."), metavar="DIR", help="repository root (default: .)"
    )

    parser = add_command(
        subparsers,
        "nbclean",
        "shoprec.devtools.nbclean:nbclean_command",
        help="keep only the metadata a committed notebook needs (outputs stay, for nbval)",
        description="Strip every cell metadata key but tags (JupyterLab's editable, deletable, "
        "slideshow, collapsed, scrolled, ...; papermill's timings), every notebook metadata key "
        "but kernelspec and language_info, and the Python patch version. Outputs, execution "
        "counts and cell ids stay. Exit 1 if a notebook changed (the pre-commit hook).",
    )
    parser.add_argument("notebooks", nargs="+", type=Path, metavar="NOTEBOOK")

    parser = add_command(
        subparsers,
        "nblint",
        "shoprec.devtools.nblint:nblint_command",
        help="lint notebooks: parameters cell, top-to-bottom run, clean and small outputs",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[Path("notebooks")],
        metavar="PATH",
        help="notebooks, or directories to search for them (default: notebooks)",
    )
    parser.add_argument(
        "--max-output-bytes",
        type=int,
        metavar="N",
        help="limit on all outputs of a notebook (default: shoprec.devtools.nblint's)",
    )
    parser.add_argument(
        "--max-single-output-bytes",
        type=int,
        metavar="N",
        help="limit on any one output (default: shoprec.devtools.nblint's)",
    )

    parser = add_command(
        subparsers,
        "nbdiff",
        "shoprec.devtools.nbdiff_html:nbdiff_command",
        help="diff two notebooks, or every notebook changed since a git ref, with nbdime",
        description="Print nbdime's diff of BASE.ipynb and REMOTE.ipynb (--html: also write a "
        "page rendering it), or, with --git-base, of every notebook changed on HEAD since it "
        "forked from REF, as a markdown summary and one page per notebook.",
    )
    parser.add_argument("base", nargs="?", metavar="BASE.ipynb")
    parser.add_argument("remote", nargs="?", metavar="REMOTE.ipynb")
    parser.add_argument("--html", type=Path, metavar="OUT_DIR", help="write the diff page here")
    parser.add_argument("--git-base", metavar="REF", help="diff the notebooks changed since REF")
    parser.add_argument("--summary", type=Path, metavar="FILE", help="append markdown to FILE")
    parser.add_argument("--html-dir", type=Path, metavar="DIR", help="write one page per notebook")
