"""`make monitor-demo`'s timeline on real local services, checked against the simulator's truth:
pipeline, deploy through the gates, shoppers over HTTP, a taste shift that `shoprec monitor
--check` detects, a retrain on the event store deployed through the gates, CTR recovering."""

from pathlib import Path

import httpx
import pytest

from shoprec.monitoring.timeline import PHASE_SECONDS, RATE, RETRAINED_SECONDS, live_timeline
from shoprec.policy import PRODUCTION_RECIPE

pytestmark = [pytest.mark.service, pytest.mark.notebook, pytest.mark.demo]


def test_the_live_timeline_detects_the_shift_and_the_retrain_recovers(
    tmp_path: Path, repo_root: Path
) -> None:
    shift = live_timeline(tmp_path / "project", repo_root)

    phases, truth = shift["phases"], shift["true_ctr"]
    assert shift["requests"]["failed"] == 0
    assert 0.8 * RATE * PHASE_SECONDS <= phases["before"]["lists"] <= RATE * PHASE_SECONDS + 1
    assert phases["after_retrain"]["lists"] >= 0.8 * RATE * RETRAINED_SECONDS
    assert phases["before"]["versions"] == phases["after_shift"]["versions"] == ["1"]
    assert phases["after_retrain"]["versions"] == ["2"]
    # What the event store measured agrees with what the simulator knows, in every phase.
    for name, phase in phases.items():
        assert abs(phase["ctr"] - truth[name]) < 0.05, (name, phase, truth)
    # The shift costs clicks, and the monitor says so.
    assert phases["after_shift"]["interval"][1] < phases["before"]["interval"][0]
    assert shift["drift_detected"] and shift["ctr_drop_detected"]
    assert any(line.startswith("taste_drift") for line in shift["detected"])
    before, after = shift["taste_agreement_before"], shift["taste_agreement_at_detection"]
    assert after["high"] < before["low"]  # shoppers' own choices left the model's top lists
    assert shift["impressions_to_detection"] == phases["after_shift"]["lists"]
    # The retrain on events passed against production's recipe, deployed, and won clicks back.
    retrain = shift["retrain"]
    assert retrain["evaluation"] == "passed" and retrain["deployed"] is True
    assert retrain["basis"] == PRODUCTION_RECIPE and "dataset='events'" in retrain["basis_reason"]
    assert retrain["value"] >= retrain["threshold"]
    assert truth["after_retrain"] > truth["after_shift"] + 0.01
    assert shift["ctr_after_retrain"] > shift["ctr_after_shift"]
    # Every service the timeline started is stopped.
    assert set(shift["services"]) == {"test", "staging", "production"}
    for url in shift["services"].values():
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/health", timeout=2.0)
