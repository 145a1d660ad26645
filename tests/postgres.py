"""A real PostgreSQL server for the tests, started by the tests themselves.

`postgres_server` (session-scoped) runs `initdb` and `pg_ctl` from Debian's `postgresql` package
as an unprivileged user (PostgreSQL refuses to run as root), with a data folder in a temporary
directory, listening on 127.0.0.1 on a free port, and stops it at the end of the session.
Connections over TCP authenticate with a password (scram-sha-256), as a shop's server would.
Without the server binaries the tests skip, except in CI (`CI=true`), where they fail:
`.ci/install-postgres` installs them.
"""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT = 60
SUPERUSER = "shoprec"
SUPERUSER_PASSWORD = "fixture-superuser"


def server_binaries() -> Path | None:
    """The newest installed PostgreSQL server's bin folder, if any."""
    found = sorted(glob.glob(BIN_GLOB), key=lambda path: int(Path(path).parent.name))
    found = [path for path in found if (Path(path) / "pg_ctl").is_file()]
    return Path(found[-1]) if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_user() -> tuple[list[str], str | None]:
    """The command prefix running a program as an unprivileged user, and that user."""
    if os.geteuid() != 0:
        return [], None
    user = "nobody"
    pwd.getpwnam(user)
    return ["runuser", "-u", user, "--"], user


def _run(prefix: list[str], *command: str) -> None:
    result = subprocess.run(
        [*prefix, *command], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The base URL (`postgresql://user:password@127.0.0.1:port`) of the tests' PostgreSQL."""
    binaries = server_binaries()
    if binaries is None:
        reason = f"PostgreSQL server binaries not found ({BIN_GLOB}/pg_ctl)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI must install them with .ci/install-postgres")
        pytest.skip(f"{reason}; install them with: bash .ci/install-postgres")
    prefix, user = _as_user()
    root = Path(tempfile.mkdtemp(prefix="shoprec-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (root, sockets):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    root.chmod(0o755)
    password_file = root / "password"
    password_file.write_text(SUPERUSER_PASSWORD + "\n")
    password_file.chmod(0o644)
    port = _free_port()
    try:
        _run(prefix, str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER,
             "--pwfile", str(password_file), "--auth-local=trust",
             "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c full_page_writes=off"
        _run(prefix, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
             "-o", options, "-w", "-t", str(START_TIMEOUT), "start")  # fmt: skip
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        log = root / "server.log"
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {error}\n{detail}")
    try:
        yield f"postgresql://{SUPERUSER}:{SUPERUSER_PASSWORD}@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a fresh, empty database on the test server (dropped afterwards)."""
    import sqlalchemy

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(
        f"{postgres_server.replace('postgresql://', 'postgresql+psycopg://')}/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield f"{postgres_server}/{name}"
    finally:
        deadline = time.monotonic() + 10
        with admin.connect() as connection:
            while True:
                try:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                    break
                except sqlalchemy.exc.OperationalError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
        admin.dispose()
