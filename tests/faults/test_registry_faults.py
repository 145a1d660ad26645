"""Issue 11, faults 6 and 7: a model cache that hid tampering and never healed; unverified code.

- after a bit flip in a registered artifact, the corrupt copy stayed in `.shoprec/models/` and
  refused rollback even once the registry's file was restored;
- once a version was cached, tampering with the registry's copy went unnoticed;
- code added to the registered `mlflow_model.py` ran on `mlflow.pyfunc.load_model`.
"""

import json
from pathlib import Path

import pytest

from shoprec.artifact import ARRAYS_FILE, ArtifactError
from shoprec.service.app import create_app
from shoprec.tracking import registry
from shoprec.tracking.store import client
from shoprec.tracking.sync import log_run

pytestmark = pytest.mark.faults


@pytest.fixture
def version(store_project: Path, cooccurrence_model, fake_run):
    """Version 1 of the model, registered from a passed run."""
    assert log_run(fake_run(store_project, "run-a", cooccurrence_model)).model_version == "1"
    return registry.get_version(client(), "1")


def stored(version, name: str) -> Path:
    """A file of the registry's own copy of the version."""
    location = registry.registry_location(version)
    (path,) = Path(location.removeprefix("file://")).rglob(name)
    return path


def flip(path: Path) -> bytes:
    original = path.read_bytes()
    path.write_bytes(original[:200] + bytes([original[200] ^ 1]) + original[201:])
    return original


def test_corrupt_cache_entry_is_discarded_and_fetched_again(version) -> None:
    cached = registry.fetch(version)
    original = flip(cached / ARRAYS_FILE)
    again = registry.fetch(version)  # heals: discarded, downloaded again, verified
    assert again == cached and (again / ARRAYS_FILE).read_bytes() == original


def test_tampered_registry_copy_is_noticed_while_the_cache_is_good(version) -> None:
    registry.fetch(version)
    arrays = stored(version, ARRAYS_FILE)
    original = flip(arrays)
    with pytest.raises(registry.RegistryError, match="the registry's copy at .* was altered"):
        registry.fetch(version)
    arrays.write_bytes(original)  # restored: loads again, nothing stale left behind
    assert (registry.fetch(version) / ARRAYS_FILE).read_bytes() == original


def test_restored_registry_heals_a_cache_filled_while_it_was_corrupt(
    version, monkeypatch: pytest.MonkeyPatch
) -> None:
    arrays = stored(version, ARRAYS_FILE)
    original = flip(arrays)
    monkeypatch.setattr(registry, "_local_path", lambda location: None)  # a remote registry
    with pytest.raises(registry.RegistryError) as refused:
        registry.fetch(version)
    message = str(refused.value)
    assert message.startswith("version 1: the copy downloaded from the registry (file://")
    assert f"to the cache ({registry.cache_path(version)})" in message
    assert "sha256 does not match" in message
    assert not registry.cache_path(version).exists()  # the bad copy is not kept
    arrays.write_bytes(original)
    assert (registry.fetch(version) / ARRAYS_FILE).read_bytes() == original


def test_code_added_to_the_registered_pyfunc_is_refused(version) -> None:
    code = stored(version, "mlflow_model.py")
    code.write_text(code.read_text() + "\nopen('/tmp/pwned', 'w').write('ran')\n")
    with pytest.raises(registry.RegistryError, match="mlflow_model.py: sha256 does not match"):
        registry.fetch(version)
    with pytest.raises(registry.RegistryError, match="mlflow_model.py"):
        registry.load_pyfunc("1")
    with pytest.raises(ArtifactError, match="mlflow_model.py"):
        create_app(registry.model_uri("1"))


def test_cached_code_that_changes_is_discarded(version) -> None:
    cached = registry.fetch(version).parent.parent
    (cached / "mlflow_model.py").write_text("raise SystemExit('tampered')\n")
    pyfunc = registry.load_pyfunc("1")
    assert "tampered" not in (cached / "mlflow_model.py").read_text()
    assert pyfunc.metadata.flavors["python_function"]["loader_module"].endswith("code_model")


def test_a_version_registered_without_file_checksums_is_refused(version) -> None:
    client().delete_model_version_tag(registry.REGISTERED_MODEL, "1", registry.FILES_TAG)
    with pytest.raises(registry.RegistryError, match="registered without the sha256 of its files"):
        registry.fetch(registry.get_version(client(), "1"))


def test_registration_records_code_and_policy(version, store_project: Path) -> None:
    files = json.loads(version.tags[registry.FILES_TAG])
    assert {"MLmodel", "mlflow_model.py", "artifacts/model/arrays.npz"} <= set(files)
    assert (
        version.tags[registry.POLICY_TAG]
        == json.loads(
            (store_project / "runs" / "run-a" / "04_evaluate" / "evaluation.json").read_text()
        )["policy"]["sha256"]
    )
    assert version.tags[registry.STATUS_TAG] == "passed"
