"""The MLflow UI on shoprec's runs: a saved view of the headline metrics, its link, the server.

MLflow 3's UI opens an experiment as a GenAI project (an LLM-traces page) unless told otherwise,
and its runs list shows no metric until one is picked under Columns. So shoprec's experiment
carries its kind (`store.EXPERIMENT_TAGS`), and a saved view, "Headline metrics" (an experiment
tag the UI reads; it is also in the UI's Views menu): each run's headline metrics as the first
columns, then its dataset, source and model. `runs_url` links to that view on the runs list.

`python -m shoprec.tracking.ui [--port N]` (`make ui`) prints the link and serves the UI on the
project's store, on 127.0.0.1, with nothing sent beyond it (MLflow's usage telemetry off).
"""

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING

from shoprec.tracking.results import HEADLINE_METRICS

if TYPE_CHECKING:
    from mlflow import MlflowClient

VIEW_ID = "shoprec-headline"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_ID}"  # the UI's saved views are experiment tags
VIEW_NAME = "Headline metrics"
ATTRIBUTE_COLUMNS = ("Dataset", "Source", "Models")
METRIC_COLUMN_WIDTH = 140
DEFAULT_PORT = 5000
# The MLflow server, as the UI needs it here: one worker, no GenAI job runner (seven more
# processes), no usage telemetry (it fetches its configuration from the internet).
SERVER_ENVIRONMENT = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def view_state(metric_names: list[str]) -> dict:
    """The runs list's state in the view: metric columns first, then the run's attributes."""
    metrics = [f"metrics.`{name}`" for name in metric_names]
    columns = metrics + [f"attributes.`{name}`" for name in ATTRIBUTE_COLUMNS]
    return {
        "selectedColumns": columns,
        "columnOrder": columns,
        "columnWidths": dict.fromkeys(metrics, METRIC_COLUMN_WIDTH),
    }


def save_headline_view(
    mlflow_client: "MlflowClient", experiment_id: str, metric_names: list[str]
) -> None:
    """Make the experiment's "Headline metrics" view show `metric_names` first, then the metric
    columns it showed before (an earlier run's k stays visible); unchanged if it already does."""
    experiment = mlflow_client.get_experiment(experiment_id)
    saved = experiment.tags.get(VIEW_TAG)
    names = sorted(metric_names, key=_headline_order)
    if saved is not None:
        names += [name for name in _metric_columns(saved) if name not in names]
    state = json.dumps(view_state(names))
    if saved is not None and json.loads(saved).get("state") == state:
        return
    now = int(time.time() * 1000)
    created = json.loads(saved)["createdAt"] if saved is not None else now
    envelope = {"name": VIEW_NAME, "createdAt": created, "updatedAt": now, "state": state}
    mlflow_client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps(envelope))


def _metric_columns(saved_view: str) -> list[str]:
    """The metric names a saved view's columns show, in its order."""
    columns = json.loads(json.loads(saved_view)["state"]).get("selectedColumns", [])
    return [column[len("metrics.`") : -1] for column in columns if column.startswith("metrics.`")]


def _headline_order(name: str) -> tuple[int, str]:
    prefixes = [f"{metric}_at_" for metric in HEADLINE_METRICS]
    rank = next((i for i, prefix in enumerate(prefixes) if name.startswith(prefix)), len(prefixes))
    return rank, name


def runs_url(base_url: str, experiment_id: str) -> str:
    """The experiment's runs list in the headline view, as a model-training project."""
    return (
        f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs"
        f"?workflowType=machine_learning&viewStateShareKey={VIEW_ID}"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the link to shoprec's runs, then serve the MLflow UI on the project's store."""
    from shoprec.tracking.store import (
        client,
        experiment_id,
        is_local,
        local_artifacts,
        tracking_uri,
    )

    parser = argparse.ArgumentParser(prog="python -m shoprec.tracking.ui", description=__doc__)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    args = parser.parse_args(argv)
    experiment = experiment_id(client())
    uri = tracking_uri()
    if uri.startswith(("http://", "https://")):
        print(f"shoprec's runs, on the team's tracking server: {runs_url(uri, experiment)}")
        return 0
    base = f"http://127.0.0.1:{args.port}"
    print(f"shoprec's runs with their headline metrics: {runs_url(base, experiment)}", flush=True)
    command = ["mlflow", "server", "--host", "127.0.0.1", "--port", str(args.port), "--workers",
               "1", "--backend-store-uri", uri]  # fmt: skip
    if is_local():
        command += ["--default-artifact-root", str(local_artifacts())]
    os.environ.update(SERVER_ENVIRONMENT)
    executable = os.path.join(os.path.dirname(sys.executable), "mlflow")
    os.execv(executable, command)
    return 0  # not reached: the server replaced this process


if __name__ == "__main__":
    sys.exit(main())
