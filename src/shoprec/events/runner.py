"""A deployed service's main process: uvicorn with one worker per core, logs kept by size.

Run by `shoprec.deploy.services.start` as `python -m shoprec.events.runner`. It empties the
Prometheus multiprocess folder, brings the event store's schema up to date, then runs uvicorn
with `--workers`. Every process's stdout and stderr go through one pipe to a thread of this
process, the only writer of the log file: the log is appended to across restarts and rotated
by size, keeping the last `--backups` files (`<env>.log.1` is the newest of them).
When a worker process ends (uvicorn starts a new one if it crashed), the log says how many
impression records it lost: those still in its in-memory queue, read from the counters it left.
"""

import argparse
import logging
import logging.handlers
import os
import shutil
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FACTORY = "shoprec.events.serve:app_from_env"
WORKER_CHECK_INTERVAL = 1.0  # seconds between looks for workers that ended
LOG_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# The last line the log writer reads: the runner's own output ends there. A helper process that
# outlives the workers (multiprocessing's resource tracker) keeps the pipe open, so the writer
# cannot wait for the end of the pipe without holding up the service's exit.
END_OF_LOG = b"---- shoprec service: end of log ----\n"
ACCESS_FORMAT = (
    '%(asctime)s ACCESS [%(process)d] %(client_addr)s "%(request_line)s" %(status_code)s'
)


def _log_config(access_log: bool) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "default": {"format": LOG_FORMAT},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": ACCESS_FORMAT,
                "use_colors": False,
            },  # fmt: skip
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "stream": "ext://sys.stderr",
            },  # fmt: skip
            "access": {
                "class": "logging.StreamHandler",
                "formatter": "access",
                "stream": "ext://sys.stdout",
            },  # fmt: skip
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {
                "handlers": ["access"],
                "level": "INFO" if access_log else "WARNING",
                "propagate": False,
            },  # fmt: skip
            "shoprec": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


def _keep_logs(path: Path, max_bytes: int, backups: int) -> threading.Thread:
    """Send this process's (and its children's) stdout and stderr to a size-rotated log."""
    handler = logging.handlers.RotatingFileHandler(
        path, mode="a", maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(message)s"))
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)

    def copy() -> None:
        with os.fdopen(read_end, "rb") as lines:
            for line in lines:
                if line == END_OF_LOG:
                    break
                text = line.decode("utf-8", "replace").rstrip("\n")
                handler.emit(logging.makeLogRecord({"msg": text, "args": None}))

    writer = threading.Thread(target=copy, name="log-writer", daemon=True)
    writer.start()
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    return writer


def report_ended_workers(metrics_dir: Path, reported: set[int]) -> list[str]:
    """One line per worker that ended since the last call: the impression records it lost.

    A worker that shut down cleanly wrote or spooled its queue (0 lost); one that crashed lost
    what its queue held. Counts come from the samples file the worker left in `metrics_dir`.
    """
    from shoprec.events.logger import lost_in_queue
    from shoprec.processes import process_alive
    from shoprec.service.metrics import impression_counts

    lines = []
    for path in sorted(metrics_dir.glob("counter_*.db")):
        pid = int(path.stem.rpartition("_")[2])
        if pid == os.getpid() or pid in reported or process_alive(pid):
            continue
        reported.add(pid)
        counts = impression_counts(path)
        lines.append(
            f"worker {pid} ended: {lost_in_queue(counts)} impression records lost from its queue "
            f"(received {counts.get('received', 0)}, written {counts.get('written', 0)}, "
            f"spooled {counts.get('spooled', 0)}, dropped {counts.get('dropped', 0)})"
        )
    return lines


def _watch_workers(metrics_dir: Path, stopping: threading.Event) -> threading.Thread:
    """Report each worker that ends, until `stopping` is set."""
    reported: set[int] = set()

    def watch() -> None:
        while not stopping.wait(WORKER_CHECK_INTERVAL):
            for line in report_ended_workers(metrics_dir, reported):
                stamp = datetime.now(UTC).isoformat(timespec="seconds")
                print(f"{stamp} WARNING shoprec.events: {line}", flush=True)

    watcher = threading.Thread(target=watch, name="worker-watch", daemon=True)
    watcher.start()
    return watcher


def _close_logs(writer: threading.Thread) -> None:
    """Let the log writer write the last lines: mark the end, wait for the writer to reach it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, END_OF_LOG)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    writer.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    """Run the service until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m shoprec.events.runner")
    parser.add_argument("--env", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--control-dir", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--log-max-bytes", type=int, default=10_000_000)
    parser.add_argument("--log-backups", type=int, default=5)
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--pid-file", type=Path, help="where to write this process's pid")
    args = parser.parse_args(argv)
    if args.pid_file is not None:  # before anything slow: `shoprec stop` must find this process
        args.pid_file.write_text(f"{os.getpid()}\n")

    writer = _keep_logs(args.log, args.log_max_bytes, args.log_backups)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"{started} ---- shoprec service {args.env} starting: pid {os.getpid()}, "
          f"{args.workers} workers, http://{args.host}:{args.port}", flush=True)  # fmt: skip

    from shoprec.deploy import control

    # Set before anything imports prometheus_client (with one worker, the app runs here).
    MULTIPROC_VAR = "PROMETHEUS_MULTIPROC_DIR"  # noqa: N806 - as shoprec.service.metrics

    metrics_dir = args.control_dir / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    os.environ[MULTIPROC_VAR] = str(metrics_dir)
    os.environ[control.CONTROL_DIR_VAR] = str(args.control_dir)
    os.environ[control.SERVICE_PID_VAR] = str(os.getpid())
    control.clear_worker_statuses(args.control_dir)

    from shoprec.events.errors import DamagedStoreError, EventStoreError
    from shoprec.events.store import EventStore, check_store

    try:
        check_store()  # reads only: a damaged store is left as it is found
        store = EventStore()  # brings the schema up to date once, before the workers start
        store.dispose()
    except DamagedStoreError as error:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"{stamp} ERROR shoprec.events: {error}", flush=True)
        _close_logs(writer)
        return 1
    except EventStoreError as error:
        print(f"event store unavailable at start (impressions are spooled): {error}", flush=True)

    import uvicorn

    # uvicorn re-raises SIGTERM/SIGINT once shut down; exit through `finally` to log it.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    stopping = threading.Event()
    if args.workers > 1:  # with one worker, the app runs in this process
        _watch_workers(metrics_dir, stopping)
    try:
        _serve(uvicorn, args)
    finally:
        stopping.set()
        stopped = datetime.now(UTC).isoformat(timespec="seconds")
        print(f"{stopped} ---- shoprec service {args.env} stopped: pid {os.getpid()}", flush=True)
        _close_logs(writer)
    return 0


def _serve(uvicorn: Any, args: argparse.Namespace) -> None:
    uvicorn.run(
        FACTORY,
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_config=_log_config(not args.no_access_log),
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    sys.exit(main())
