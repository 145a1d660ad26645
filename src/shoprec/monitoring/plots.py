"""The monitoring report's plots: CTR over time per version, and the click rate by position.

A window with nothing to plot draws an empty frame that says so, never an error.
"""

from datetime import datetime

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

NOTHING_YET = "no lists in these windows yet"


def _empty(axis: Axes, text: str = NOTHING_YET) -> None:
    axis.text(0.5, 0.5, text, transform=axis.transAxes, ha="center", va="center", color="grey")


def ctr_over_time(by_bucket: pd.DataFrame, window_start: datetime) -> Figure:
    """CTR per version and time bucket (`report.rates_over_time`), its 95% interval as a band,
    and a dashed line where the window judged starts."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 3.5))
    for version, rows in by_bucket.groupby("model_version"):
        axis.plot(rows["bucket"], rows["ctr"], marker="o", label=f"version {version}")
        axis.fill_between(rows["bucket"], rows["ctr_low"], rows["ctr_high"], alpha=0.2)
    axis.set_ylabel("CTR (lists with a click)")
    axis.set_title("CTR by version; dashed: start of the window judged")
    if by_bucket.empty:
        _empty(axis)
    else:
        axis.axvline(window_start, color="grey", linestyle="--", linewidth=1)
        axis.legend()
    figure.autofmt_xdate()
    return figure


def click_rate_by_position(positions: pd.DataFrame) -> Figure:
    """Each version's click rate at each position of its lists (`metrics.clicks_by_position`)."""
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3))
    for version, rows in positions.groupby("model_version"):
        axis.plot(rows["position"], rows["click_rate"], marker="o", label=f"version {version}")
    axis.set_xlabel("position")
    axis.set_ylabel("click rate")
    if positions.empty:
        _empty(axis)
    else:
        axis.legend()
    return figure
