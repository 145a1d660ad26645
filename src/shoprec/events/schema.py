"""The event store's tables and their versioned schema, upgraded in place one step at a time.

Version 1 held impressions and feedback events; version 2 added each impression's `k` and an
index on the request id feedback events are attributed by. `upgrade` applies every step the
database lacks, each in its own transaction, and records the version reached.
"""

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
)

SCHEMA_TABLE = "shoprec_schema"

metadata = MetaData()

schema_info = Table(
    SCHEMA_TABLE,
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

impressions = Table(
    "impressions",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("served_at", DateTime(timezone=True), nullable=False),
    Column("environment", String(32), nullable=False),
    Column("model_version", String(32), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("fallback", Boolean, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("items", Text, nullable=False),  # JSON: [[item_id, rank, score], ...], best first
    Column("k", Integer, nullable=True),  # version 2
)

feedback_events = Table(
    "feedback_events",
    metadata,
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(16), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("item_id", BigInteger, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("environment", String(32), nullable=False),
    Column("request_id", String(64), nullable=True),
)


def _operations(connection: Connection):  # noqa: ANN202 - alembic's Operations
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    return Operations(MigrationContext.configure(connection))


def _version_1(connection: Connection) -> None:
    op = _operations(connection)
    op.create_table(
        "impressions",
        Column("request_id", String(64), primary_key=True),
        Column("served_at", DateTime(timezone=True), nullable=False),
        Column("environment", String(32), nullable=False),
        Column("model_version", String(32), nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("fallback", Boolean, nullable=False),
        Column("latency_ms", Float, nullable=False),
        Column("items", Text, nullable=False),
    )
    op.create_index("ix_impressions_env_version", "impressions", ["environment", "model_version"])
    op.create_table(
        "feedback_events",
        Column("event_id", String(64), primary_key=True),
        Column("event_type", String(16), nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("item_id", BigInteger, nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("environment", String(32), nullable=False),
        Column("request_id", String(64), nullable=True),
    )


def _version_2(connection: Connection) -> None:
    op = _operations(connection)
    op.add_column("impressions", Column("k", Integer, nullable=True))
    op.create_index("ix_feedback_events_request_id", "feedback_events", ["request_id"])


MIGRATIONS: tuple[Callable[[Connection], None], ...] = (_version_1, _version_2)
SCHEMA_VERSION = len(MIGRATIONS)


def current_version(connection: Connection) -> int:
    """The schema version the database holds; 0 for an empty database."""
    if not inspect(connection).has_table(SCHEMA_TABLE):
        return 0
    return connection.execute(select(schema_info.c.version)).scalar_one_or_none() or 0


def _record(connection: Connection, version: int) -> None:
    if version == 1:
        schema_info.create(connection, checkfirst=True)
        connection.execute(schema_info.insert().values(id=1, version=version))
    else:
        update = schema_info.update().where(schema_info.c.id == 1)
        connection.execute(update.values(version=version))


def upgrade(connection_factory: Callable[[], object], target: int = SCHEMA_VERSION) -> int:
    """Apply the missing schema steps up to `target`; return the version the database was at.

    `connection_factory` is an engine's `begin`: each step runs in its own transaction.
    A database newer than this code is refused rather than touched.
    """
    with connection_factory() as connection:
        found = current_version(connection)
    if found > SCHEMA_VERSION:
        from shoprec.events.errors import EventStoreError

        raise EventStoreError(
            f"event store schema version {found} is newer than this shoprec "
            f"(knows up to {SCHEMA_VERSION}); upgrade shoprec"
        )
    for version in range(found + 1, target + 1):
        with connection_factory() as connection:
            if current_version(connection) >= version:  # another process got there first
                continue
            MIGRATIONS[version - 1](connection)
            _record(connection, version)
    return found
