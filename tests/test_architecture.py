"""Imports flow one way, as data flows: a module imports only its own layer and those below.

The layers, bottom to top, are listed once, here; the README's architecture section shows them.
A module is in the layer of the longest prefix that names it. A module generated from a notebook
that no prefix names is in the layer of the other modules its notebook exports, so a new export
cell needs no edit here; a module that cannot be placed that way is reported with the line to add.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "shoprec"
LAYERS = (
    ("foundations", ("shoprec.errors", "shoprec.settings", "shoprec.checksums", "shoprec.params",
                     "shoprec.ranking",
                     "shoprec.runs", "shoprec.processes", "shoprec.execution", "shoprec.kernels",
                     "shoprec.warm_kernels",
                     "shoprec.redact",
                     "shoprec.policy", "shoprec.devtools")),
    ("loaders", ("shoprec.validation", "shoprec.loaders", "shoprec.synthetic")),
    ("interactions", ("shoprec.interactions", "shoprec.datasets")),
    ("models", ("shoprec.models", "shoprec.metrics", "shoprec.tuning", "shoprec.spark")),
    ("artifact", ("shoprec.artifact", "shoprec.mlflow_model")),
    ("tracking", ("shoprec.tracking",)),
    ("pipeline", ("shoprec.pipeline", "shoprec.reproduce", "shoprec.experiments",
                  "shoprec.report")),
    ("deploy", ("shoprec.deploy",)),
    ("service", ("shoprec.service",)),
    ("events", ("shoprec.events",)),
    ("monitoring", ("shoprec.monitoring", "shoprec.simulation")),
    ("cli", ("shoprec.commands", "shoprec.cli")),
)  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def listed_layer(module: str) -> int | None:
    """The index of the layer whose longest prefix names `module`, if one does."""
    matches = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    return max(matches)[1] if matches else None


def exporting_notebook(module: str) -> str | None:
    """The notebook `module` is generated from (its header says), if it is generated."""
    with MODULES[module].open(encoding="utf-8") as file:
        header = file.readline()
    found = re.match(r"# Generated from (\S+\.ipynb):", header)
    return found[1] if found else None


def layer_of(module: str) -> int:
    """The index of the module's layer: its prefix's in LAYERS, else its notebook's."""
    if module == "shoprec":
        return 0  # the package itself: only its version
    listed = listed_layer(module)
    if listed is not None:
        return listed
    notebook = exporting_notebook(module)
    siblings = {
        listed_layer(other)
        for other in MODULES
        if other != module and notebook and exporting_notebook(other) == notebook
    } - {None}
    if len(siblings) == 1:
        return siblings.pop()
    raise AssertionError(_unplaced(module, notebook, siblings))


def _unplaced(module: str, notebook: str | None, siblings: set[int]) -> str:
    """What to write where for a module no layer holds."""
    below = [listed_layer(target) for target in imports_of(module)]
    lowest = max((layer for layer in below if layer is not None), default=0)
    origin = f" (generated from {notebook})" if notebook else ""
    if len(siblings) > 1:
        why = f"the modules of {notebook} are in {len(siblings)} layers"
    elif notebook:
        why = f"no other module of {notebook} has a layer to share"
    else:
        why = "no prefix in LAYERS names it"
    return (
        f"{module}{origin} is in no layer: {why}. Add {module!r} to the prefixes of the layer it "
        f"belongs to in LAYERS in {__file__}: the lowest it may go is {LAYERS[lowest][0]!r}, the "
        "highest layer of what it imports"
    )


def imports_of(module: str) -> set[str]:
    """The shoprec modules `module` imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from shoprec.x import y` imports module x.y if it is one
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return {name for name in found if name in MODULES and name != module}


GRAPH = {module: imports_of(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(module: str) -> None:
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for target in sorted(GRAPH[module])
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "; ".join(upward)


def test_no_two_modules_import_each_other() -> None:
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in sorted(GRAPH[module]):
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    done: set[str] = set()
    for module in sorted(MODULES):
        if module not in done:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(sorted(set(cycles)))


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


@pytest.mark.xdist_group("grouping-check")
def test_xdist_groups_reach_the_scheduler(request: pytest.FixtureRequest) -> None:
    """Under `-n N --dist loadgroup`, marked tests carry their group (tests share a Spark session
    and notebooks hand results to each other through it); pytest 9.2 broke this silently."""
    if not (hasattr(request.config, "workerinput") and request.config.getvalue("loadgroup")):
        pytest.skip("runs under pytest-xdist with --dist loadgroup (make test)")
    assert request.node.nodeid.endswith("@grouping-check")


# Exceptions that are not errors of shoprec: they carry a signal through the stack.
NOT_ERRORS = {"RunInterrupted"}  # SIGINT or SIGTERM during a pipeline run (a KeyboardInterrupt)


def test_every_exception_shoprec_raises_on_purpose_is_a_shoprec_error() -> None:
    """One hierarchy: the command line maps `ShoprecError.exit_code` to the exit code."""
    import builtins

    bases: dict[str, list[str]] = {}
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [ast.unparse(base).rpartition(".")[2] for base in node.bases]

    def is_builtin_exception(name: str) -> bool:
        found = getattr(builtins, name, None)
        return isinstance(found, type) and issubclass(found, BaseException)

    def ancestors(name: str) -> set[str]:
        found = set(bases.get(name, []))
        for base in bases.get(name, []):
            found |= ancestors(base)
        return found

    exceptions = [
        name
        for name in bases
        if any(is_builtin_exception(base) for base in ancestors(name) | {name})
        and name != "ShoprecError"
    ]
    assert len(exceptions) > 20
    unrooted = sorted(name for name in exceptions if "ShoprecError" not in ancestors(name))
    assert unrooted == sorted(NOT_ERRORS)


def _add_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    monkeypatch.setitem(MODULES, name, path)


def test_a_new_export_module_takes_the_layer_of_its_notebooks_other_modules(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    header = "# Generated from notebooks/lib/popularity.ipynb: edit the notebook, not this file.\n"
    _add_module(monkeypatch, tmp_path, "shoprec.formatting", header + "import math\n")
    assert exporting_notebook("shoprec.models.popularity") == "notebooks/lib/popularity.ipynb"
    assert LAYERS[layer_of("shoprec.formatting")][0] == "models"


def test_a_module_no_layer_holds_is_reported_with_the_line_to_add(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    header = "# Generated from notebooks/lib/pricing.ipynb: edit the notebook, not this file.\n"
    _add_module(monkeypatch, tmp_path, "shoprec.pricing", header + "import shoprec.artifact\n")
    with pytest.raises(AssertionError) as failure:
        layer_of("shoprec.pricing")
    message = str(failure.value)
    assert message.startswith(
        "shoprec.pricing (generated from notebooks/lib/pricing.ipynb) is in no layer: no other "
        "module of notebooks/lib/pricing.ipynb has a layer to share. Add 'shoprec.pricing' to "
        "the prefixes of the layer it belongs to in LAYERS in "
    )
    assert message.endswith(
        "the lowest it may go is 'artifact', the highest layer of what it imports"
    )

    _add_module(monkeypatch, tmp_path, "shoprec.handmade", '"""Written by hand."""\n')
    with pytest.raises(AssertionError, match=r"^shoprec.handmade is in no layer: no prefix in "
                       r"LAYERS names it\. .* the lowest it may go is 'foundations'"):  # fmt: skip
        layer_of("shoprec.handmade")


LIGHT_COMMANDS = (["status"], ["stop", "--env", "test"], ["--help"])
HEAVY_PACKAGES = ("sklearn", "scipy", "mlflow", "matplotlib", "pyspark")


@pytest.mark.parametrize("argv", LIGHT_COMMANDS, ids=" ".join)
def test_commands_that_only_look_at_or_stop_services_import_no_heavy_package(
    argv: list[str], tmp_path: Path
) -> None:
    """`shoprec status` and `shoprec stop` answer at once: the model code (scikit-learn, SciPy)
    and MLflow are imported only by the commands that load a model or track a run."""
    probe = (
        "import sys\nfrom shoprec.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(name for name in {HEAVY_PACKAGES!r} if name in sys.modules))"
    )
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("SHOPREC_")},
        "SHOPREC_PROJECT_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        capture_output=True, text=True, env=environment, timeout=120, check=False,
    )  # fmt: skip
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
