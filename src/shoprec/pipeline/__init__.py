"""The main job: the pipeline notebooks executed in order with papermill into `runs/<run-id>/`.

- `plan`: which parameters each notebook gets (defaults, `-p` overrides, run paths) and which
  a run may not set;
- `production`: the model production serves, fetched from the registry to compare against;
- `execute`: papermill runs the notebooks, the run record is written and `runs/latest` moved;
- `command`: `shoprec pipeline`, which tracks the run and prints its outcome.
"""
