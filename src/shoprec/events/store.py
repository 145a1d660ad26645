"""The event store: impressions and feedback events in SQLite (default) or PostgreSQL.

The default is `.shoprec/events.db`, an SQLite file in WAL mode (readers never wait for the
writer); `SHOPREC_EVENTS_URL=postgresql://user@host/db` puts the store on PostgreSQL (driver:
psycopg 3). The schema is upgraded in place when a store is opened.
"""

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, Integer, cast, create_engine, event, func, inspect, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError

from shoprec.events import schema
from shoprec.events.errors import DamagedStoreError, EventStoreError
from shoprec.runs import state_dir

EVENTS_FILE = "events.db"
SPOOL_DIR = "spool"  # under the state folder: impressions wait there while the store is down
UPGRADE_ATTEMPTS = 4
_UPGRADE_LOCK = threading.Lock()
SQLITE_BUSY_TIMEOUT_MS = 10_000


def default_url() -> str:
    """SQLAlchemy URL of the store: `SHOPREC_EVENTS_URL`, else `.shoprec/events.db`."""
    from shoprec.settings import get_settings

    configured = get_settings().events_url
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    return f"sqlite:///{state_dir() / EVENTS_FILE}"


def redacted(url: str | URL) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is shown without its credentials
        return str(url).rpartition("@")[2]


def _engine_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except Exception as error:  # noqa: BLE001 - sqlalchemy raises ArgumentError or ValueError
        raise EventStoreError(
            f"SHOPREC_EVENTS_URL={redacted(url)!r} is not a database URL "
            "(expected sqlite:///path or postgresql://user@host/db)"
        ) from error
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise EventStoreError(
            f"event store {redacted(parsed)}: backend {parsed.get_backend_name()!r} is not "
            "supported; expected sqlite or postgresql"
        )
    return parsed


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _reading_engine(url: URL) -> Engine:
    """An engine that only reads. SQLite: the file opened read-only, as `immutable` when no
    write-ahead log is there to read (SQLite would otherwise create `-wal` and `-shm` files)."""
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "").resolve()
        mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
        return create_engine(f"sqlite:///file:{quote(str(path))}?{mode}&uri=true")
    return create_engine(url)


def _recovery(url: URL, description: str) -> str:
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "").resolve()
        ends = [end for end in ("", "-wal", "-shm") if Path(f"{path}{end}").exists()]
        moves = "; ".join(f"mv {path}{end} {path}.damaged{end}" for end in ends)
        return (
            f"move it aside ({moves}) and start again: a new, empty store is made, and the "
            f"impressions waiting in {state_dir() / SPOOL_DIR} meanwhile are written to it "
            f"(recover older rows from a backup, or with sqlite3's .recover)"
        )
    return f"restore {description} from a backup, or point SHOPREC_EVENTS_URL at another database"


def check_store(url: str | None = None) -> int:
    """Check the event store before anything is written to it; return its schema version.

    SQLite: `PRAGMA quick_check` on the file opened read-only (a missing file is a new
    store). Both backends: the schema version must be one this code knows. Raises
    DamagedStoreError, naming the store and how to recover it, when either fails;
    EventStoreError when the store cannot be reached at all (impressions are spooled then).
    """
    parsed = _engine_url(url or default_url())
    description = redacted(parsed)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and not (parsed.database and Path(parsed.database).exists()):
        return 0
    engine = _reading_engine(parsed)

    def damaged(problem: str) -> DamagedStoreError:
        return DamagedStoreError(
            f"event store {description} is damaged ({problem}): the service stops and nothing "
            f"was written to it; to recover, {_recovery(parsed, description)}"
        )

    try:
        with engine.connect() as connection:
            if sqlite:
                found = [row[0] for row in connection.exec_driver_sql("PRAGMA quick_check")]
                if found != ["ok"]:
                    raise damaged(f"PRAGMA quick_check: {'; '.join(map(str, found[:3]))}")
            version = schema.current_version(connection)
            tables = set(inspect(connection).get_table_names())
    except DamagedStoreError:
        raise
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        if sqlite:  # the file is there, and SQLite cannot read it
            raise damaged(reason) from error
        raise EventStoreError(f"event store {description}: cannot check it: {reason}") from error
    finally:
        engine.dispose()
    if version > schema.SCHEMA_VERSION:
        raise damaged(f"schema version {version}; this shoprec knows up to {schema.SCHEMA_VERSION}")
    if version == 0 and tables & {schema.impressions.name, schema.feedback_events.name}:
        raise damaged(f"shoprec's tables without their schema version ({schema.SCHEMA_TABLE})")
    return version


@dataclass(frozen=True)
class SummaryRow:
    """Impressions and attributed feedback of one environment and model version."""

    environment: str
    model_version: str | None
    impressions: int
    fallback_impressions: int
    click: int
    add_to_cart: int
    purchase: int


class EventStore:
    """Impressions and feedback events in one database, its schema kept at the current version."""

    def __init__(self, url: str | None = None, *, upgrade: bool = True) -> None:
        self.url = _engine_url(url or default_url())
        self.description = redacted(self.url)
        if self.url.get_backend_name() == "sqlite" and self.url.database:
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, pool_pre_ping=True)
        if self.url.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if upgrade:
            self.upgrade()

    def _fail(self, action: str, error: Exception) -> EventStoreError:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        return EventStoreError(f"event store {self.description}: cannot {action}: {reason}")

    def upgrade(self) -> int:
        """Bring the schema to the current version; return the version found before.

        Upgrades in this process take turns; one that collides with another process's is
        retried (each step checks the version again, so the loser finds the work done).
        """
        with _UPGRADE_LOCK:
            for attempt in range(UPGRADE_ATTEMPTS):
                try:
                    return schema.upgrade(self.engine.begin)
                except SQLAlchemyError as error:
                    if attempt == UPGRADE_ATTEMPTS - 1:
                        raise self._fail("upgrade the schema", error) from error
                    time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")

    def schema_version(self) -> int:
        """The schema version the database holds."""
        try:
            with self.engine.connect() as connection:
                return schema.current_version(connection)
        except SQLAlchemyError as error:
            raise self._fail("read the schema version", error) from error

    def _insert_ignoring_duplicates(self, table: Any) -> Any:
        if self.url.get_backend_name() == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).on_conflict_do_nothing()

    def add_impressions(self, records: Sequence[dict[str, Any]]) -> None:
        """Store impression records; a request id already stored is skipped (replays are safe)."""
        if not records:
            return
        statement = self._insert_ignoring_duplicates(schema.impressions)
        try:
            with self.engine.begin() as connection:
                connection.execute(statement, list(records))
        except SQLAlchemyError as error:
            raise self._fail(f"store {len(records)} impressions", error) from error

    def add_feedback(self, events: Sequence[dict[str, Any]]) -> tuple[int, int]:
        """Store feedback events all together or not at all; (stored, already stored) counts.

        An event id stored before, or repeated within `events`, is a duplicate and is skipped.
        """
        unique: dict[str, dict[str, Any]] = {}
        for record in events:
            unique.setdefault(record["event_id"], record)
        table = schema.feedback_events
        try:
            with self.engine.begin() as connection:
                known = set(
                    connection.execute(
                        select(table.c.event_id).where(table.c.event_id.in_(list(unique)))
                    ).scalars()
                )
                fresh = [record for key, record in unique.items() if key not in known]
                if fresh:
                    connection.execute(self._insert_ignoring_duplicates(table), fresh)
        except SQLAlchemyError as error:
            raise self._fail(f"store {len(events)} feedback events", error) from error
        return len(fresh), len(events) - len(fresh)

    def count_impressions(self, environment: str | None = None) -> int:
        """How many impressions are stored (in `environment`, if given)."""
        query = select(func.count()).select_from(schema.impressions)
        if environment is not None:
            query = query.where(schema.impressions.c.environment == environment)
        try:
            with self.engine.connect() as connection:
                return int(connection.execute(query).scalar_one())
        except SQLAlchemyError as error:
            raise self._fail("count impressions", error) from error

    def impressions(self, request_ids: Iterable[str]) -> list[dict[str, Any]]:
        """The stored impressions with these request ids."""
        table = schema.impressions
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    select(table).where(table.c.request_id.in_(list(request_ids)))
                )
                return [dict(row._mapping) for row in rows]
        except SQLAlchemyError as error:
            raise self._fail("read impressions", error) from error

    def feedback(self) -> list[dict[str, Any]]:
        """Every stored feedback event, in event id order."""
        table = schema.feedback_events
        try:
            with self.engine.connect() as connection:
                rows = connection.execute(select(table).order_by(table.c.event_id))
                return [dict(row._mapping) for row in rows]
        except SQLAlchemyError as error:
            raise self._fail("read feedback events", error) from error

    def summary(self, environment: str | None = None) -> list[SummaryRow]:
        """Impressions and feedback per environment and model version, in that order.

        Feedback carrying the request id of a stored impression counts for that impression's
        model version; other feedback counts under model version None.
        """
        shown, events = schema.impressions, schema.feedback_events
        served = select(
            shown.c.environment,
            shown.c.model_version,
            func.count().label("impressions"),
            func.sum(cast(shown.c.fallback, Integer)).label("fallbacks"),
        ).group_by(shown.c.environment, shown.c.model_version)
        version = shown.c.model_version
        feedback = (
            select(events.c.environment, version, events.c.event_type, func.count())
            .select_from(events.outerjoin(shown, shown.c.request_id == events.c.request_id))
            .group_by(events.c.environment, version, events.c.event_type)
        )
        if environment is not None:
            served = served.where(shown.c.environment == environment)
            feedback = feedback.where(events.c.environment == environment)
        table: dict[tuple[str, str | None], dict[str, int]] = {}
        try:
            with self.engine.connect() as connection:
                for env, model_version, count, fallbacks in connection.execute(served):
                    row = table.setdefault((env, model_version), {})
                    row["impressions"], row["fallback_impressions"] = count, int(fallbacks or 0)
                for env, model_version, kind, count in connection.execute(feedback):
                    table.setdefault((env, model_version), {})[kind] = count
        except SQLAlchemyError as error:
            raise self._fail("summarise events", error) from error

        def order(key: tuple[str, str | None]) -> tuple[str, int, str]:
            env, model_version = key
            digits = model_version or ""
            return env, int(digits) if digits.isdigit() else 1 << 62, digits

        return [
            SummaryRow(
                environment=env,
                model_version=model_version,
                impressions=counts.get("impressions", 0),
                fallback_impressions=counts.get("fallback_impressions", 0),
                click=counts.get("click", 0),
                add_to_cart=counts.get("add_to_cart", 0),
                purchase=counts.get("purchase", 0),
            )
            for (env, model_version), counts in sorted(table.items(), key=lambda kv: order(kv[0]))
        ]

    def dispose(self) -> None:
        """Close the store's connections."""
        self.engine.dispose()


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC (naive values are taken to be UTC)."""
    from datetime import UTC

    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
