"""Embedded PostgreSQL 16 + pgvector from the ``pgserver`` wheel, listening on 127.0.0.1.

pgserver's own ``get_server`` listens on a Unix socket only; Airflow's async driver and other
processes are simpler over TCP, so this module uses pgserver's bundled binaries and user
handling but starts the server on a loopback port. Trust authentication is safe only because
the server binds to loopback: use DATABASE_URL for anything shared.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

SUPERUSER = "postgres"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


class EmbeddedPostgres:
    """A project-local PostgreSQL server: ``start()``, ``url(db)``, ``ensure_database()``, ``stop()``."""

    def __init__(self, data_dir: Path, port: int, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.host = host
        self._system_user: str | None = None
        # The postmaster this object started; stop() leaves any other one alone.
        self.started_pid: int | None = None

    # -- paths and commands -------------------------------------------------------------
    @property
    def bin_dir(self) -> Path:
        from pgserver._commands import POSTGRES_BIN_PATH

        return Path(POSTGRES_BIN_PATH)

    @property
    def log_file(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    def _run(self, exe: str, *args: str, timeout: float = 60) -> str:
        cmd = [str(self.bin_dir / exe), *args]
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, user=self._system_user, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{exe} failed ({result.returncode}): {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def _prepare_permissions(self) -> None:
        """Postgres refuses to run as root: run it as pgserver's unprivileged system user."""
        if os.name == "nt" or os.geteuid() != 0:
            return
        import pwd
        import stat

        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        self._system_user = "pgserver"
        ensure_user_exists(self._system_user)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(self.bin_dir)
        read = stat.S_IRGRP | stat.S_IROTH
        execute = stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(self.bin_dir, read | execute)
        ensure_folder_permissions(self.bin_dir.parent / "lib", read)
        entry = pwd.getpwnam(self._system_user)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if self.log_file.exists():
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)

    # -- lifecycle ----------------------------------------------------------------------
    def is_running(self) -> bool:
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return False
        try:
            self._run("pg_ctl", "-D", str(self.data_dir), "status", timeout=10)
        except RuntimeError:
            return False
        return True

    def start(self, timeout: float = 60) -> None:
        """Initialise the data directory on first use, then start the server (or reuse a running one)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("initialising PostgreSQL data directory %s", self.data_dir)
            self._run(
                "initdb", "-D", str(self.data_dir), "--auth=trust", "--encoding=utf8", "-U", SUPERUSER, timeout=120
            )
        if self.is_running():
            running_port = self._running_port()
            if running_port is not None:
                self.port = running_port
            log.info("PostgreSQL already running on port %s", self.port)
            return
        if port_is_open(self.host, self.port):
            raise RuntimeError(
                f"port {self.port} on {self.host} is taken by another program; set PG_PORT to a free port "
                "or DATABASE_URL to use an existing PostgreSQL"
            )
        # Log file in the parent directory: the data directory belongs to the postgres user.
        self.log_file.touch(exist_ok=True)
        if self._system_user:
            import pwd

            entry = pwd.getpwnam(self._system_user)
            os.chown(self.log_file, entry.pw_uid, entry.pw_gid)
        options = f"-h {self.host} -p {self.port} -k '' -c max_connections=200 -c shared_buffers=256MB"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-o",
            options,
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            str(int(timeout)),
            "start",
            timeout=timeout + 10,
        )
        deadline = time.monotonic() + timeout
        while not port_is_open(self.host, self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not listen on {self.host}:{self.port}; see {self.log_file}")
            time.sleep(0.1)
        self.started_pid = self.running_pid()
        log.info("PostgreSQL listening on %s:%s", self.host, self.port)

    def running_pid(self) -> int | None:
        """The postmaster's PID from its pid file, if that process exists."""
        try:
            first = (self.data_dir / "postmaster.pid").read_text().splitlines()[0].strip()
        except (OSError, IndexError):
            return None
        if not first.isdigit():
            return None
        try:
            os.kill(int(first), 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # it exists, as another user
        return int(first)

    def serving(self) -> bool:
        """Up and listening (cheaper than ``pg_ctl status``: no process is spawned)."""
        return self.running_pid() is not None and port_is_open(self.host, self.port)

    def _running_port(self) -> int | None:
        lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        return int(lines[3]) if len(lines) > 3 and lines[3].strip().isdigit() else None

    def stop(self) -> None:
        """Stop the server this object started; one started by someone else keeps running."""
        pid = self.running_pid()
        if pid is None:
            return
        if pid != self.started_pid:
            log.info("PostgreSQL (PID %s) was not started by this process: leaving it running", pid)
            return
        self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", timeout=60)

    # -- databases ----------------------------------------------------------------------
    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def ensure_database(self, name: str) -> str:
        """Create ``name`` if missing and return its URL."""
        return ensure_database(self.url("postgres"), name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            host=self.host, port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def ensure_database(server_url: str, name: str) -> str:
    """Create database ``name`` on ``server_url``'s server if missing; return its URL."""
    import psycopg
    from psycopg import sql
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, dbname="postgres", autocommit=True
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url.set(database=name).render_as_string(hide_password=False)
