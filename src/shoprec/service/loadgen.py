"""Bounded load generators for 127.0.0.1 only: `wrk` (closed loop) and a fixed-rate one.

`fixed_rate` is open loop: request i is due at start + i / rate whatever happened before, and
its latency counts from when it was due, so a stalled server shows in the percentiles instead
of slowing the generator down (no coordinated omission). It speaks HTTP/1.1 keep-alive over
asyncio streams with a bounded pool of connections, cheap enough to leave the CPU to the
server. Both refuse any host but 127.0.0.1.
"""

import asyncio
import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

LOOPBACK = "127.0.0.1"
REQUEST_TIMEOUT = 5.0

WRK_SCRIPT = """
local paths = {%(paths)s}
local body = %(body)s
local counter = 0
request = function()
  counter = counter + 1
  local path = paths[(counter %% #paths) + 1]
  if body then
    return wrk.format("POST", "%(post_path)s", {["Content-Type"] = "application/json"},
                      string.format(body, path))
  end
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, '
    .. '"write": %%d, "status": %%d, "timeout": %%d, "p50_us": %%d, "p90_us": %%d, '
    .. '"p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class LoadResult:
    """What a load run measured."""

    tool: str
    requests: int
    succeeded: int
    failed: int
    seconds: float
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    detail: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The result as plain JSON values."""
        return asdict(self)


def _loopback(url: str) -> None:
    host = urlsplit(url).hostname
    if host != LOOPBACK:
        raise ValueError(f"{url}: load is only generated against {LOOPBACK}")


def wrk(
    base_url: str,
    values: list[int],
    *,
    path_template: str = "/recommendations?user_id={}&k=10",
    post_path: str | None = None,
    body_template: str | None = None,
    connections: int = 16,
    threads: int = 1,
    seconds: float = 15,
) -> LoadResult:
    """Run wrk against `base_url`, cycling through `values` (user ids) in its requests.

    GET `path_template` per value, or, with `post_path`, POST `body_template` (a Lua format
    string with one %s) per value.
    """
    _loopback(base_url)
    binary = shutil.which("wrk")
    if binary is None:
        raise FileNotFoundError("wrk not found; install it with: bash .ci/install-wrk")
    if body_template is None:
        paths = ", ".join(f'"{path_template.format(value)}"' for value in values)
        body = "nil"
    else:
        paths = ", ".join(f'"{value}"' for value in values)
        body = json.dumps(body_template)
    script = WRK_SCRIPT % {"paths": paths, "body": body, "post_path": post_path or "/"}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as stream:
        stream.write(script)
    try:
        command = [binary, "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s"]
        command += ["--timeout", f"{REQUEST_TIMEOUT:g}s", "-s", stream.name, base_url]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    finally:
        Path(stream.name).unlink(missing_ok=True)
    line = next((x for x in result.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    errors = raw["connect"] + raw["read"] + raw["write"] + raw["status"] + raw["timeout"]
    seconds_run = raw["duration_us"] / 1e6
    return LoadResult(
        tool=f"wrk -t{threads} -c{connections} -d{seconds:g}s",
        requests=raw["requests"],
        succeeded=raw["requests"] - raw["status"],
        failed=errors,
        seconds=seconds_run,
        requests_per_second=raw["requests"] / seconds_run,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        detail=raw,
    )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def _fixed_rate(
    base_url: str,
    paths: list[str],
    rate: float,
    seconds: float,
    connections: int,
    on_response: Callable[[int, dict[str, str], bytes], None] | None,
    stop: threading.Event | None,
) -> LoadResult:
    parts = urlsplit(base_url)
    total = int(rate * seconds)
    due: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    latencies = np.full(total, np.nan)
    failures: dict[str, int] = {}
    start = time.perf_counter() + 0.05

    async def connection() -> None:
        reader = writer = None
        while True:
            ticket = await due.get()
            if ticket is None:
                break
            index, scheduled = ticket
            request = (f"GET {paths[index % len(paths)]} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                       "Connection: keep-alive\r\n\r\n").encode()  # fmt: skip
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
                writer.write(request)
                status, headers, body = await asyncio.wait_for(
                    _read_response(reader), REQUEST_TIMEOUT
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as error:
                failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            if status != 200:
                failures[f"HTTP {status}"] = failures.get(f"HTTP {status}", 0) + 1
            else:
                latencies[index] = time.perf_counter() - scheduled
            if on_response is not None:
                on_response(status, headers, body)
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    for index in range(total):
        if stop is not None and stop.is_set():
            total = index
            break
        scheduled = start + index / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        due.put_nowait((index, scheduled))
    for _ in workers:
        due.put_nowait(None)
    await asyncio.wait_for(asyncio.gather(*workers), REQUEST_TIMEOUT * 4 + seconds)
    elapsed = time.perf_counter() - start
    latencies = latencies[:total]
    ok = latencies[~np.isnan(latencies)] * 1000
    failed = int(sum(failures.values()))
    percentile = (lambda q: float(np.percentile(ok, q))) if len(ok) else (lambda q: float("nan"))
    return LoadResult(
        tool=f"fixed rate {rate:g} req/s x {seconds:g} s ({connections} connections)",
        requests=total,
        succeeded=len(ok),
        failed=failed,
        seconds=elapsed,
        requests_per_second=total / elapsed,
        p50_ms=percentile(50),
        p90_ms=percentile(90),
        p99_ms=percentile(99),
        max_ms=float(ok.max()) if len(ok) else float("nan"),
        detail={"failures": failures},
    )


def fixed_rate(
    base_url: str,
    paths: list[str],
    *,
    rate: float,
    seconds: float,
    connections: int = 32,
    on_response: Callable[[int, dict[str, str], bytes], None] | None = None,
    stop: threading.Event | None = None,
) -> LoadResult:
    """Send `rate` GET requests per second for `seconds` (paths in turn), or until `stop`."""
    _loopback(base_url)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    return runner(_fixed_rate(base_url, paths, rate, seconds, connections, on_response, stop))
