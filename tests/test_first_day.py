"""A teammate's first day after the README's set-up, taken as they take it, in a scratch clone:
`make pipeline` (the notebooks on the embedded data, then test -> staging -> production), the
README's request to production, `shoprec status`, then the first `shoprec monitor --check`
right after the deploy (which once crashed on the empty comparison window).

The services listen on free ports (SHOPREC_PORT_<ENV>, as a teammate would set them when the
defaults are taken) and are stopped with `make stop` whatever happens.
"""

from pathlib import Path

import httpx
import pytest
from deployment import free_ports
from scratch import make, run, scratch_clone

pytestmark = [pytest.mark.notebook, pytest.mark.service]


def test_make_pipeline_deploys_to_production_and_the_first_monitor_says_no_alerts(
    repo_root: Path, tmp_path: Path
) -> None:
    clone = scratch_clone(repo_root, tmp_path / "shoprec")
    ports = dict(zip(("test", "staging", "production"), free_ports(3), strict=True))
    settings = {f"SHOPREC_PORT_{env.upper()}": str(port) for env, port in ports.items()}
    try:
        made = make(clone, "pipeline", **settings).stdout
        assert "evaluation PASSED: it may be deployed" in made
        for env, port in ports.items():
            assert f"{env}: serving version 1 (run " in made
            assert f"http://127.0.0.1:{port}" in made

        # The README's first request, to production.
        url = f"http://127.0.0.1:{ports['production']}/recommendations?user_id=42&k=5"
        answer = httpx.get(url, timeout=30).json()
        assert answer["model"]["version"] == "1" and answer["model"]["algorithm"]
        assert [item["rank"] for item in answer["items"]] == [1, 2, 3, 4, 5]

        status = run(clone, ".venv/bin/shoprec", "status", **settings).stdout.splitlines()
        assert [line.split()[0] for line in status[1:]] == ["test", "staging", "production"]
        assert all(line.split()[2] == "1" and line.endswith(" up") for line in status[1:])

        # The first monitor, minutes after the first deploy: says what it cannot judge yet.
        monitored = run(
            clone, ".venv/bin/shoprec", "monitor", "--env", "production", "--check", **settings
        )
        lines = monitored.stdout.splitlines()
        assert lines[0].startswith("monitor report: ") and lines[-1] == "no alerts"
        assert any(line.startswith("  cannot judge yet: ") for line in lines)
        assert "Traceback" not in monitored.stdout + monitored.stderr
    finally:
        make(clone, "stop", **settings)
    for port in ports.values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
