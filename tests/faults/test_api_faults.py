"""Issue 22, faults 3, 4 and 5: POST /events, the event store and the API's description,
probed on a live service.

- valid ISO 8601 times at the edge of the range (`0001-01-01T00:00:00+14:00`) answered 500;
  Unix numbers were accepted; a 10 MB body was read and parsed before being refused;
- an `events.db` cut to half its size went unnoticed: the service started and wrote into it;
- schemathesis found the OpenAPI description and the service disagreeing: a `$ref` to an
  undefined FeedbackEvent, undocumented 422 and 404, no bounds on `k`, 422 bodies of another
  shape than described.

The live service is the deployed one (`python -m shoprec.events.runner`, uvicorn with
httptools), started on a saved model without a registry.
"""

import hashlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from deployment import free_ports
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shoprec.artifact import save_model
from shoprec.deploy import control
from shoprec.events import schema
from shoprec.events.errors import DamagedStoreError
from shoprec.events.routes import MAX_BODY_BYTES
from shoprec.events.serve import build_app
from shoprec.events.store import EventStore, check_store
from shoprec.models import Recommender
from shoprec.service.openapi import dangling_refs
from shoprec.tracking.registry import artifact_digest

pytestmark = pytest.mark.faults

API_KEY = "fault-suite-key"
GOOD = {"type": "click", "user_id": 1, "item_id": 2, "timestamp": "2026-11-28T10:00:00Z"}


@dataclass
class Live:
    url: str
    project: Path
    port: int
    process: subprocess.Popen

    @property
    def events_db(self) -> Path:
        return self.project / ".shoprec" / "events.db"


def run_service(project: Path, model_dir: Path) -> subprocess.Popen:
    """The deployed service's process on `model_dir`, for project `project`, on a free port."""
    folder = project / ".shoprec" / "services" / "test"
    control.write_target(folder, "1", model_dir, artifact_digest(model_dir), "run-live")
    (port,) = free_ports(1)
    command = [sys.executable, "-m", "shoprec.events.runner", "--env", "test", "--port",
               str(port), "--workers", "1", "--control-dir", str(folder), "--log",
               str(project / "service.log"), "--no-access-log"]  # fmt: skip
    variables = {"SHOPREC_PROJECT_DIR": str(project), "SHOPREC_API_KEY": API_KEY,
                 "SHOPREC_ENVIRONMENT": "test"}  # fmt: skip
    process = subprocess.Popen(command, env={**os.environ, **variables}, start_new_session=True)
    process.port = port  # type: ignore[attr-defined]
    return process


def healthy(port: int, process: subprocess.Popen, timeout: float = 180) -> bool:
    """Wait until the service answers /health (True) or its process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def model_dir(cooccurrence_model: Recommender, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(cooccurrence_model, tmp_path_factory.mktemp("model"), {"run_id": "run-live"})


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> Iterator[Live]:
    project = tmp_path_factory.mktemp("live")
    process = run_service(project, model_dir)
    try:
        assert healthy(process.port, process), (project / "service.log").read_text()
        yield Live(f"http://127.0.0.1:{process.port}", project, process.port, process)
    finally:
        stop(process)


def post(live: Live, body: object) -> httpx.Response:
    return httpx.post(f"{live.url}/events", json=body, headers={"X-API-Key": API_KEY}, timeout=10)


def stored_times(live: Live) -> dict[str, datetime]:
    store = EventStore(f"sqlite:///{live.events_db}")
    try:
        return {row["event_id"]: row["occurred_at"] for row in store.feedback()}
    finally:
        store.dispose()


# Times: stored or refused with 422, never 500; ISO 8601 with a zone only


@pytest.mark.service
@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 in UTC: astimezone overflowed (500)
        "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
        1700000000,  # Unix time, as a number
        "1700000000",  # ... and as a string
        1700000000.5,
        "2026-11-28T10:00:00",  # no zone
        "2026-02-30T10:00:00Z",  # no such day
        "2026-11-28T24:00:00Z",  # ISO 8601's end of day
        "2026-12-31T23:59:60Z",  # a leap second
        "2026-W48-5T10:00:00Z",  # a week date
        "2026-11-28T10,5Z",  # a decimal hour (Python's fromisoformat reads 10:00:00.5)
    ],
)
def test_times_outside_the_documented_shape_are_a_422_naming_the_field(
    live: Live, timestamp: object
) -> None:
    response = post(live, {**GOOD, "timestamp": timestamp, "event_id": "edge"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("timestamp: expected an ISO 8601 date-time") or (
        response.json()["detail"].startswith("timestamp: not a calendar date")
    )
    assert response.json()["errors"][0]["field"] == "timestamp"
    assert "edge" not in stored_times(live)


@pytest.mark.service
def test_times_in_the_documented_shape_are_stored_in_utc(live: Live) -> None:
    batch = [
        {**GOOD, "timestamp": "2026-11-28T11:00:00.250+01:00", "event_id": "offset"},
        {**GOOD, "timestamp": "1970-01-01T00:00:00+14:00", "event_id": "earliest"},
        {**GOOD, "timestamp": "2199-12-31T23:59:59.999999999-23:59", "event_id": "latest"},
    ]
    assert post(live, batch).status_code == 200
    times = {key: value.replace(tzinfo=UTC) for key, value in stored_times(live).items()}
    assert times["offset"] == datetime(2026, 11, 28, 10, 0, 0, 250000, tzinfo=UTC)
    assert times["earliest"] == datetime(1969, 12, 31, 10, tzinfo=UTC)
    assert times["latest"] == datetime(2200, 1, 1, 23, 58, 59, 999999, tzinfo=UTC)


DIGITS = st.integers(0, 99).map(lambda n: f"{n:02d}")
ISO_LIKE = st.builds(
    "{}{}{}{}{}{}{}".format,
    st.sampled_from(["0000", "0001", "1969", "1970", "2026", "2199", "2200", "9999", "+012026"]),
    st.sampled_from(["-11-28", "1128", "-02-29", "-13-01", "-00-10", "-W48-5", "-332", ""]),
    st.sampled_from(["T", "t", " ", ""]),
    st.builds("{}:{}".format, DIGITS, DIGITS) | st.builds("{}{}".format, DIGITS, DIGITS),
    st.sampled_from(["", ":00", ":59", ":60", ":00.5", ":00,25", ":00.1234567891", ".5"]),
    st.sampled_from(["Z", "z", "", "+14:00", "-14:00", "+23:59", "+24:00", "+0530", "+05"]),
    st.sampled_from(["", " ", "\x00", "Z", "\u221205:00"]),  # the last: a minus sign, not "-"
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    timestamp=ISO_LIKE
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
def test_any_time_iso_8601_can_write_is_stored_or_refused_never_a_500(
    events_client: TestClient, timestamp: object
) -> None:
    response = events_client.post("/events", json={**GOOD, "timestamp": timestamp})
    assert response.status_code in (200, 422), (timestamp, response.text)


@pytest.fixture(scope="module")
def events_client(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("events")
    app = build_app(model_dir, events_url=f"sqlite:///{folder / 'events.db'}", spool=folder)
    app.state.api_key = ""
    with TestClient(app) as client:
        yield client


# A body over the limit: refused before it is read whole, let alone parsed


def _exchange(port: int, head: bytes, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send `head`, then `chunks` until the service answers; its answer and the bytes sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # little waits in buffers
        sock.sendall(head)
        sent = 0
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        return answer, sent


def _head(live: Live, length_header: str) -> bytes:
    return (
        f"POST /events HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Type: application/json"
        f"\r\nX-API-Key: {API_KEY}\r\n{length_header}\r\n\r\n"
    ).encode()


@pytest.mark.service
def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(live: Live) -> None:
    ten_mb = 10 * 1024 * 1024
    head = _head(live, f"Content-Length: {ten_mb}")
    answer, sent = _exchange(live.port, head, iter([b"[" * 65536]))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent <= 65536  # the service answered without waiting for the 10 MB


@pytest.mark.service
def test_a_chunked_body_over_the_limit_is_refused_as_it_streams_in(live: Live) -> None:
    piece = b"[" * 65536  # not JSON: a parser would answer 422, not 413
    chunks = (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(1024))  # 64 MiB in all
    answer, sent = _exchange(live.port, _head(live, "Transfer-Encoding: chunked"), chunks)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert sent < 16 * MAX_BODY_BYTES  # answered while the body streamed in (and buffers)
    body = answer.split(b"\r\n\r\n", 1)[1]
    assert f"at most {MAX_BODY_BYTES} bytes (1 MiB) per request".encode() in body or not body


# A damaged event store stops the service, untouched, and says how to recover


def _events(store: EventStore, count: int) -> None:
    now = datetime.now(UTC)
    store.add_impressions([
        {"request_id": f"r{n:06d}", "served_at": now, "environment": "test",
         "model_version": "1", "user_id": n, "fallback": False, "latency_ms": 1.0,
         "items": "[[1, 1, 1.0]]" * 40, "k": 1}
        for n in range(count)
    ])  # fmt: skip


@pytest.mark.service
def test_a_truncated_events_db_stops_the_service_untouched_and_its_advice_recovers(
    tmp_path: Path, model_dir: Path
) -> None:
    events_db = tmp_path / ".shoprec" / "events.db"
    store = EventStore(f"sqlite:///{events_db}")
    _events(store, 3000)
    store.dispose()
    data = events_db.read_bytes()
    events_db.write_bytes(data[: len(data) // 2])
    files = {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
             for path in events_db.parent.glob("events.db*")}  # fmt: skip
    spool = tmp_path / ".shoprec" / "spool" / "test"  # what another service spooled meanwhile
    spool.mkdir(parents=True)
    (spool / "4242-1.jsonl").write_text(
        '{"request_id": "spooled", "served_at": "2026-11-28T10:00:00+00:00", '
        '"environment": "test", "model_version": "1", "user_id": 7, "fallback": false, '
        '"latency_ms": 1.0, "items": "[]", "k": 1}\n'
    )

    process = run_service(tmp_path, model_dir)
    assert not healthy(process.port, process) and process.wait(timeout=30) == 1
    (line,) = [line for line in (tmp_path / "service.log").read_text().splitlines()
               if " ERROR " in line]  # fmt: skip
    assert f"event store sqlite:///{events_db} is damaged (" in line
    assert "the service stops and nothing was written to it; to recover, move it aside (" in line
    assert {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in events_db.parent.glob("events.db*")} == files  # fmt: skip

    moves = re.search(r"move it aside \((.+?)\) and start again", line)[1]
    for move in moves.split("; "):
        subprocess.run(move.split(), check=True)
    process = run_service(tmp_path, model_dir)
    try:
        assert healthy(process.port, process)
        deadline = time.monotonic() + 30  # the spool is replayed by the writer thread
        while EventStore(f"sqlite:///{events_db}").impressions(["spooled"]) == []:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    finally:
        stop(process)
    assert (tmp_path / ".shoprec" / "events.db.damaged").exists()


def test_a_store_of_a_newer_schema_is_refused_at_start_without_a_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    EventStore(url).dispose()
    store = EventStore(url, upgrade=False)
    with store.engine.begin() as connection:
        connection.execute(schema.schema_info.update().values(version=schema.SCHEMA_VERSION + 1))
    store.dispose()
    with pytest.raises(DamagedStoreError, match=r"schema version 3; this shoprec knows up to 2"):
        check_store(url)


@pytest.mark.postgres
def test_a_postgresql_store_of_another_schema_version_is_refused(postgres_url: str) -> None:
    EventStore(postgres_url).dispose()
    store = EventStore(postgres_url, upgrade=False)
    with store.engine.begin() as connection:
        connection.execute(schema.schema_info.delete())
    store.dispose()
    with pytest.raises(DamagedStoreError) as refused:
        check_store(postgres_url)
    message = str(refused.value)
    assert "shoprec's tables without their schema version" in message
    assert "restore " in message and "SHOPREC_EVENTS_URL" in message
    assert "postgres:" not in message.split("@")[0].split("//")[1]  # no password shown


# The description is the contract


@pytest.mark.service
def test_the_description_defines_what_it_refers_to_and_every_answer(live: Live) -> None:
    described = httpx.get(f"{live.url}/openapi.json").json()
    assert dangling_refs(described) == []
    assert "FeedbackEvent" in described["components"]["schemas"]
    paths = described["paths"]
    assert set(paths) == {"/", "/recommendations", "/similar-items", "/health", "/metrics",
                          "/events"}  # fmt: skip
    (k,) = [p for p in paths["/recommendations"]["get"]["parameters"] if p["name"] == "k"]
    assert "from 1 to 100" in k["description"]
    bounded = re.compile(k["schema"]["pattern"])
    assert [n for n in range(-5, 500) if bounded.fullmatch(str(n))] == list(range(1, 101))
    assert bounded.fullmatch("007") and not bounded.fullmatch("10.0")
    problem = {"$ref": "#/components/schemas/ValidationProblem"}
    for path, method in [("/recommendations", "get"), ("/similar-items", "get"),
                         ("/events", "post")]:  # fmt: skip
        answers = paths[path][method]["responses"]
        assert answers["422"]["content"]["application/json"]["schema"] == problem
    assert "404" in paths["/similar-items"]["get"]["responses"]
    assert str(MAX_BODY_BYTES) in paths["/events"]["post"]["responses"]["413"]["description"]
    assert paths["/events"]["post"]["security"] == [{"ApiKey": []}]
    answer = httpx.get(f"{live.url}/recommendations", params={"user_id": "x", "k": "0"})
    assert answer.status_code == 422 and set(answer.json()) == {"detail", "errors"}


@pytest.mark.service
def test_schemathesis_finds_nothing_with_its_default_checks(live: Live, tmp_path: Path) -> None:
    """Every operation, POST /events included: examples, coverage, fuzzing and stateful
    phases, every default check; bounded to 25 examples an operation and seeded."""
    command = [str(Path(sys.executable).with_name("st")), "run", f"{live.url}/openapi.json",
               "--header", f"X-API-Key: {API_KEY}", "--max-examples", "25", "--seed", "22",
               "--no-color", "--report", "json", "--report-dir", str(tmp_path)]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=tmp_path, timeout=600, check=False
    )
    assert result.returncode == 0, result.stdout[-6000:]
    assert "Operations:       6 selected / 6 total" in result.stdout
    assert "POST /events" not in result.stdout.split("SUMMARY")[0] or "FAILURES" not in (
        result.stdout
    )
    (report,) = tmp_path.glob("*.json")
    assert json.loads(report.read_text())
