"""Impressions and feedback events of one environment and time window, read from the event store.

Reads only (SELECT); a row the monitor cannot use is kept out of the metrics and counted, by
reason, in `EventFrames.problems`, never dropped silently.
"""

from dataclasses import dataclass, field
from datetime import datetime

import orjson
import pandas as pd
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from shoprec.events import schema
from shoprec.events.errors import EventStoreError
from shoprec.events.store import EventStore, as_utc

IMPRESSION_COLUMNS = ["request_id", "served_at", "environment", "model_version", "user_id",
                      "fallback", "latency_ms", "items", "k"]  # fmt: skip
FEEDBACK_COLUMNS = ["event_id", "event_type", "user_id", "item_id", "occurred_at",
                    "received_at", "environment", "request_id"]  # fmt: skip


@dataclass
class EventFrames:
    """The window's impressions (one row per list, `items` parsed) and feedback events."""

    impressions: pd.DataFrame
    feedback: pd.DataFrame
    problems: dict[str, int] = field(default_factory=dict)


def _items(text: str) -> list[int] | None:
    try:
        listed = orjson.loads(text)
        return [int(entry[0]) for entry in listed]
    except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError):
        return None


def frames(
    impressions: pd.DataFrame, feedback: pd.DataFrame, problems: dict[str, int] | None = None
) -> EventFrames:
    """Typed, ordered frames from raw rows; lists that cannot be read are counted, not used."""
    impressions = impressions.reindex(columns=IMPRESSION_COLUMNS).copy()
    feedback = feedback.reindex(columns=FEEDBACK_COLUMNS).copy()
    problems = dict(problems or {})
    parsed = impressions["items"].map(lambda text: _items(text) if isinstance(text, str) else None)
    bad = parsed.isna()
    if bad.any():
        problems["impressions with an unreadable item list"] = int(bad.sum())
    impressions = impressions.assign(items=parsed)[~bad]
    impressions["served_at"] = pd.to_datetime(impressions["served_at"], utc=True)
    impressions["model_version"] = impressions["model_version"].astype(str)
    impressions["fallback"] = impressions["fallback"].astype(bool)
    impressions["latency_ms"] = impressions["latency_ms"].astype(float)
    feedback["occurred_at"] = pd.to_datetime(feedback["occurred_at"], utc=True)
    unknown_type = ~feedback["event_type"].isin(["click", "add_to_cart", "purchase"])
    if unknown_type.any():
        problems["feedback events of an unknown type"] = int(unknown_type.sum())
    feedback = feedback[~unknown_type]
    impressions = impressions.sort_values(["served_at", "request_id"], kind="stable")
    feedback = feedback.sort_values(["occurred_at", "event_id"], kind="stable")
    return EventFrames(
        impressions.reset_index(drop=True), feedback.reset_index(drop=True), problems
    )


def read_window(
    store: EventStore,
    environment: str,
    start: datetime | None = None,
    end: datetime | None = None,
    feedback_end: datetime | None = None,
) -> EventFrames:
    """The environment's impressions served in [start, end), and feedback that occurred in
    [start, feedback_end) (default: `end`; later, to give the window's last lists their
    attribution window)."""
    feedback_end = end if feedback_end is None else feedback_end
    shown, events = schema.impressions, schema.feedback_events
    served = select(shown).where(shown.c.environment == environment)
    feedback = select(events).where(events.c.environment == environment)
    if start is not None:
        served = served.where(shown.c.served_at >= as_utc(start))
        feedback = feedback.where(events.c.occurred_at >= as_utc(start))
    if end is not None:
        served = served.where(shown.c.served_at < as_utc(end))
    if feedback_end is not None:
        feedback = feedback.where(events.c.occurred_at < as_utc(feedback_end))
    try:
        with store.engine.connect() as connection:
            impressions = pd.DataFrame(connection.execute(served).mappings().all())
            rows = pd.DataFrame(connection.execute(feedback).mappings().all())
    except SQLAlchemyError as error:
        raise EventStoreError(
            f"event store {store.description}: cannot read the monitoring window: {error}"
        ) from error
    return frames(impressions, rows)
