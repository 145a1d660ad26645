"""`get_settings()` always says what the environment says now, though it parses it only once."""

from pathlib import Path

import pytest

from shoprec.errors import ConfigurationError
from shoprec.settings import get_settings


def test_the_same_environment_gives_the_same_settings_object():
    assert get_settings() is get_settings()


def test_a_changed_variable_is_seen_at_once(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOPREC_PORT_STAGING", "9123")
    assert get_settings().port("staging") == 9123
    monkeypatch.setenv("SHOPREC_PORT_STAGING", "9124")
    assert get_settings().port("staging") == 9124
    monkeypatch.delenv("SHOPREC_PORT_STAGING")
    assert get_settings().port("staging") == 8602


def test_variables_are_read_whatever_their_case_and_aliases_by_their_own_name(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.delenv("SHOPREC_WORKERS", raising=False)
    monkeypatch.setenv("shoprec_workers", "3")
    assert get_settings().workers == 3
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///elsewhere.db")
    assert get_settings().tracking_uri == "sqlite:///elsewhere.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///other.db")
    assert get_settings().tracking_uri == "sqlite:///other.db"


def test_a_relative_project_dir_follows_the_working_directory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv("SHOPREC_PROJECT_DIR", "project")
    monkeypatch.chdir(tmp_path / "a")
    assert get_settings().project_dir == tmp_path / "a" / "project"
    monkeypatch.chdir(tmp_path / "b")
    assert get_settings().project_dir == tmp_path / "b" / "project"


def test_a_malformed_value_fails_every_time_and_names_its_variable(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("SHOPREC_LOG_BACKUPS", "many")
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="SHOPREC_LOG_BACKUPS='many'"):
            get_settings()
    monkeypatch.setenv("SHOPREC_LOG_BACKUPS", "7")
    assert get_settings().log_backups == 7
