"""The event store (SQLite and a real PostgreSQL), its schema upgrades, and impression logging."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, inspect, text

from shoprec.cli import main as shoprec_main
from shoprec.events import schema
from shoprec.events.errors import EventStoreError
from shoprec.events.logger import ImpressionLogger
from shoprec.events.store import EventStore, redacted


def impression(request_id: str, version: str = "1", env: str = "test", **extra) -> dict:
    record = {
        "request_id": request_id,
        "served_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "environment": env,
        "model_version": version,
        "user_id": 42,
        "k": 2,
        "fallback": False,
        "latency_ms": 0.5,
        "items": json.dumps([[7, 1, 2.5], [9, 2, 1.5]]),
    }
    return {**record, **extra}


def feedback(event_id: str, kind: str = "click", request_id: str | None = None) -> dict:
    now = datetime(2026, 1, 2, 3, 5, tzinfo=UTC)
    return {
        "event_id": event_id,
        "event_type": kind,
        "user_id": 42,
        "item_id": 7,
        "occurred_at": now,
        "received_at": now,
        "environment": "test",
        "request_id": request_id,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def store(store_url: str) -> Iterator[EventStore]:
    opened = EventStore(store_url)
    yield opened
    opened.dispose()


def test_new_store_has_the_current_schema(store: EventStore) -> None:
    assert store.schema_version() == schema.SCHEMA_VERSION == 2
    assert store.count_impressions() == 0 and store.summary() == []


def test_sqlite_store_is_in_wal_mode(tmp_path: Path) -> None:
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    store.dispose()


def test_default_store_is_sqlite_under_dot_shoprec(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOPREC_EVENTS_URL", raising=False)
    store = EventStore()
    assert store.description == f"sqlite:///{project / '.shoprec' / 'events.db'}"
    assert (project / ".shoprec" / "events.db").is_file()
    store.dispose()


def test_events_url_comes_from_the_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SHOPREC_EVENTS_URL", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    store = EventStore()
    assert store.description.endswith("elsewhere.db")
    store.dispose()


def test_schema_version_1_is_upgraded_in_place_keeping_its_rows(store_url: str) -> None:
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    schema.upgrade(engine.begin, target=1)
    with engine.begin() as connection:
        row = {key: value for key, value in impression("r1").items() if key != "k"}
        connection.execute(schema.impressions.insert().values(**row))
    with engine.connect() as connection:
        assert schema.current_version(connection) == 1
        assert "k" not in {
            column["name"] for column in inspect(connection).get_columns("impressions")
        }
    engine.dispose()

    store = EventStore(store_url)
    assert store.schema_version() == 2
    (kept,) = store.impressions(["r1"])
    assert kept["user_id"] == 42 and kept["k"] is None
    store.add_impressions([impression("r2")])
    assert store.count_impressions() == 2
    store.dispose()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    EventStore(url).dispose()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE shoprec_schema SET version = 99"))
    engine.dispose()
    with pytest.raises(EventStoreError, match="schema version 99 is newer than this shoprec"):
        EventStore(url)


def test_impressions_are_stored_once_per_request_id(store: EventStore) -> None:
    store.add_impressions([impression("a"), impression("b")])
    store.add_impressions([impression("b"), impression("c")])  # a replay after a partial write
    assert store.count_impressions() == 3
    (stored,) = store.impressions(["a"])
    assert orjson.loads(stored["items"]) == [[7, 1, 2.5], [9, 2, 1.5]]
    assert stored["model_version"] == "1" and stored["fallback"] is False


def test_feedback_is_idempotent_by_event_id(store: EventStore) -> None:
    assert store.add_feedback([feedback("e1"), feedback("e2"), feedback("e1")]) == (2, 1)
    assert store.add_feedback([feedback("e2"), feedback("e3")]) == (1, 1)
    assert [row["event_id"] for row in store.feedback()] == ["e1", "e2", "e3"]


def test_a_failing_batch_stores_nothing(store: EventStore) -> None:
    bad = feedback("e2")
    bad["item_id"] = None  # the database refuses it
    with pytest.raises(EventStoreError, match="cannot store 2 feedback events"):
        store.add_feedback([feedback("e1"), bad])
    assert store.feedback() == []


def test_summary_attributes_feedback_to_the_version_that_served(store: EventStore) -> None:
    store.add_impressions([impression("r1", "1"), impression("r2", "2", fallback=True)])
    store.add_impressions([impression("r3", "2"), impression("p1", "1", env="production")])
    store.add_feedback(
        [
            feedback("e1", "click", "r1"),
            feedback("e2", "purchase", "r2"),
            feedback("e3", "add_to_cart", "r2"),
            feedback("e4", "click", None),
        ]
    )
    rows = [(r.environment, r.model_version, r.impressions, r.fallback_impressions, r.click,
             r.add_to_cart, r.purchase) for r in store.summary()]  # fmt: skip
    assert rows == [
        ("production", "1", 1, 0, 0, 0, 0),
        ("test", "1", 1, 0, 1, 0, 0),
        ("test", "2", 2, 1, 0, 1, 1),
        ("test", None, 0, 0, 1, 0, 0),
    ]
    assert [row.environment for row in store.summary("production")] == ["production"]


def test_url_passwords_never_appear_in_messages() -> None:
    url = "postgresql://alice:S3cretPw@127.0.0.1:1/nowhere"
    assert "S3cretPw" not in redacted(url)
    with pytest.raises(EventStoreError) as caught:
        EventStore(url)
    assert "S3cretPw" not in str(caught.value) and "alice" in str(caught.value)


def test_unsupported_backend_is_refused() -> None:
    with pytest.raises(EventStoreError, match="backend 'mysql' is not supported"):
        EventStore("mysql://u@localhost/db")


# The impression logger


def wait_for(condition, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_logger_writes_every_record_in_batches(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    logger = ImpressionLogger(lambda: EventStore(url), tmp_path / "spool").start()
    for number in range(2500):
        logger.log(impression(f"r{number}"))
    counters = logger.close()
    assert counters == {
        "received": 2500, "queued": 2500, "written": 2500, "spooled": 0, "replayed": 0,
        "dropped": 0,
    }  # fmt: skip
    store = EventStore(url)
    assert store.count_impressions() == 2500
    store.dispose()
    assert list((tmp_path / "spool").glob("*")) == []


class SwitchableStore:
    """A real store behind a switch: while `down`, opening it fails as an unreachable one does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.down = True

    def __call__(self) -> EventStore:
        if self.down:
            raise EventStoreError("event store sqlite:///x: cannot connect: connection refused")
        return EventStore(self.url)


def test_records_are_spooled_while_the_store_is_down_and_replayed_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shoprec.events.logger.RETRY_INTERVAL", 0.1)
    opener = SwitchableStore(f"sqlite:///{tmp_path / 'events.db'}")
    logger = ImpressionLogger(opener, tmp_path / "spool").start()
    for number in range(300):
        logger.log(impression(f"r{number}"))
    wait_for(lambda: logger.counters.spooled == 300)
    lines = logger.spool_path.read_bytes().splitlines()
    assert len(lines) == 300 and orjson.loads(lines[0])["request_id"] == "r0"
    opener.down = False
    wait_for(lambda: logger.counters.replayed == 300)
    logger.log(impression("after"))
    counters = logger.close()
    assert counters["dropped"] == 0 and counters["written"] == 1
    store = EventStore(opener.url)
    assert store.count_impressions() == 301
    (first,) = store.impressions(["r0"])
    assert first["served_at"].replace(tzinfo=UTC) == impression("r0")["served_at"]
    store.dispose()


def test_spool_left_by_an_ended_process_is_replayed(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    records = [impression(f"old{n}") for n in range(5)]
    lines = b"".join(orjson.dumps(r, option=orjson.OPT_NAIVE_UTC) + b"\n" for r in records)
    (spool / "12345-1.jsonl").write_bytes(lines + b'{"request_id": "cut sh')  # crash mid-line
    url = f"sqlite:///{tmp_path / 'events.db'}"
    logger = ImpressionLogger(lambda: EventStore(url), spool).start()
    wait_for(lambda: logger.counters.replayed == 5)
    logger.close()
    assert not (spool / "12345-1.jsonl").exists()
    store = EventStore(url)
    assert store.count_impressions() == 5
    store.dispose()


def test_a_full_queue_spools_instead_of_waiting(tmp_path: Path) -> None:
    opener = SwitchableStore(f"sqlite:///{tmp_path / 'events.db'}")
    logger = ImpressionLogger(opener, tmp_path / "spool", capacity=10)  # writer not started
    for number in range(25):
        logger.log(impression(f"r{number}"))
    assert logger.counters.as_dict() == {
        "received": 25, "queued": 10, "written": 0, "spooled": 15, "replayed": 0, "dropped": 0
    }  # fmt: skip
    counters = logger.close()
    assert counters["spooled"] == 25 and counters["dropped"] == 0


def test_records_are_dropped_and_counted_when_the_spool_cannot_be_written(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    logger = ImpressionLogger(SwitchableStore("sqlite://"), not_a_folder / "spool", capacity=1)
    logger.log(impression("a"))
    logger.log(impression("b"))
    assert logger.counters.as_dict()["dropped"] == 1 and logger.counters.queued == 1


CRASHING_WORKER = """
import os, sys
from pathlib import Path
from shoprec.events.logger import ImpressionLogger
from shoprec.service import metrics

count = lambda name, n: metrics.IMPRESSION_LOG.labels(name).inc(n)
logger = ImpressionLogger(lambda: None, Path(sys.argv[1]), on_count=count)  # writer not started
for number in range(int(sys.argv[2])):
    logger.log({"request_id": f"r{number}"})
os._exit(0)  # ends like a crash: no close, the queue is never written
"""


def test_a_crashed_worker_is_reported_with_the_records_its_queue_lost(tmp_path: Path) -> None:
    from shoprec.events.runner import report_ended_workers

    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    child = subprocess.run(
        [sys.executable, "-c", CRASHING_WORKER, str(tmp_path / "spool"), "37"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    reported: set[int] = set()
    (line,) = report_ended_workers(metrics_dir, reported)
    assert line.endswith(
        "ended: 37 impression records lost from its queue "
        "(received 37, written 0, spooled 0, dropped 0)"
    )
    assert report_ended_workers(metrics_dir, reported) == []  # each worker is reported once


# The `shoprec events summary` command


def test_events_summary_command(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SHOPREC_EVENTS_URL", raising=False)
    store = EventStore()
    store.add_impressions([impression("r1", "1"), impression("r2", "2")])
    store.add_feedback([feedback("e1", "purchase", "r2")])
    store.dispose()
    spool = project / ".shoprec" / "spool" / "test"
    spool.mkdir(parents=True)
    (spool / "1-1.jsonl").write_text("{}\n{}\n")
    assert shoprec_main(["events", "summary", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["impressions"] == 2 and report["spooled"] == 2
    assert [
        (row["model_version"], row["impressions"], row["purchase"]) for row in report["rows"]
    ] == [
        ("1", 1, 0),
        ("2", 1, 1),
    ]
    assert shoprec_main(["events", "summary", "--env", "production"]) == 0
    assert "no impressions or feedback events yet" in capsys.readouterr().out

    assert shoprec_main(["events", "summary"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == ["ENVIRONMENT", "VERSION", "IMPRESSIONS", "FALLBACK", "CLICK",
                              "ADD_TO_CART", "PURCHASE"]  # fmt: skip
    assert out[3].split() == ["test", "2", "1", "0", "0", "0", "1"]
    assert out[-1] == "2 impression records are spooled, waiting for the store to be written"


def test_events_summary_reports_an_unreachable_store(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPREC_EVENTS_URL", "postgresql://bob:Pw9@127.0.0.1:1/none")
    assert shoprec_main(["events", "summary"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("shoprec events summary: event store postgresql+psycopg://bob:***@")
    assert "Pw9" not in err and err.count("\n") == 1


def test_served_at_survives_the_round_trip(store: EventStore) -> None:
    moment = datetime.now(UTC) - timedelta(days=1)
    store.add_impressions([impression("t", served_at=moment)])
    (stored,) = store.impressions(["t"])
    served = stored["served_at"]
    served = served.replace(tzinfo=UTC) if served.tzinfo is None else served
    assert served == moment
