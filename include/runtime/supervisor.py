"""Keep the embedded stack running: restart what exits, with backoff, and never stop what we
did not start.

Each service is a :class:`Component`. The supervisor checks them every couple of seconds; one
that is down is started again after a delay that doubles with each quick failure (1 s up to a
minute) and resets once it has stayed up for a minute. The others keep running meanwhile, so a
short database outage costs the Airflow processes a restart, not the whole platform. Written
by hand rather than with supervisord or circus because the components are started from Python
objects that know their own readiness and ownership (pgserver's PostgreSQL is daemonized by
``pg_ctl``), and both would be one more process to install and configure.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from include.runtime.embedded_pg import EmbeddedPostgres
from include.runtime.labelstudio_server import LabelStudioServer

log = logging.getLogger("labelops")

MIN_BACKOFF = 1.0
MAX_BACKOFF = 60.0
STABLE_AFTER = 60.0  # seconds up before the backoff starts from the beginning again


class Component:
    """Something the supervisor keeps running."""

    name: str = "component"
    first_delay: float = MIN_BACKOFF  # the wait before the first restart

    def launch(self) -> None:
        """Start it without waiting for it to be ready."""
        raise NotImplementedError

    def alive(self) -> bool:
        raise NotImplementedError

    def exit_reason(self) -> str:
        return "stopped"

    def stop(self) -> None:
        """Stop it if this process started it; leave it alone otherwise."""
        raise NotImplementedError


class ProcessComponent(Component):
    """A child process in its own process group, logging to a file."""

    def __init__(self, name: str, argv: list[str], *, env: dict[str, str], log_file: Path, cwd: Path | None = None):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_file = log_file
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=str(self.cwd) if self.cwd else None,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_reason(self) -> str:
        code = self.process.returncode if self.process is not None else None
        if code is None:
            return "not started"
        return f"killed by signal {-code}" if code < 0 else f"exited with code {code}"

    def stop(self, timeout: float = 20) -> None:
        stop_process_group(self.process, timeout)


def stop_process_group(process: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    """SIGTERM the group this process leads, then SIGKILL what is left after ``timeout``."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@dataclass
class _Watch:
    component: Component
    backoff: float = MIN_BACKOFF
    up_since: float = field(default_factory=time.monotonic)
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    """Restarts components that exit; ``stop_all`` stops them in reverse order."""

    def __init__(self, interval: float = 2.0, on_restart: Callable[[str], None] | None = None) -> None:
        self.interval = interval
        self.on_restart = on_restart
        self._watches: list[_Watch] = []
        self._lock = threading.Lock()

    def add(self, component: Component) -> None:
        """Watch a component that has been started (and is ready)."""
        with self._lock:
            self._watches.append(_Watch(component, backoff=component.first_delay))

    @property
    def components(self) -> list[Component]:
        return [w.component for w in self._watches]

    def restarts(self, name: str) -> int:
        return sum(w.restarts for w in self._watches if w.component.name == name)

    def check(self) -> None:
        """One round: schedule restarts for components that are down, start those that are due."""
        now = time.monotonic()
        with self._lock:
            for watch in self._watches:
                component = watch.component
                try:
                    alive = component.alive()
                except Exception as exc:  # a check that fails counts as down
                    log.warning("could not check %s: %s", component.name, exc)
                    alive = False
                if alive:
                    if watch.restart_at is not None:  # came back by itself (or someone restarted it)
                        log.info("%s is back", component.name)
                        watch.restart_at, watch.up_since = None, now
                    elif now - watch.up_since >= STABLE_AFTER:
                        watch.backoff = component.first_delay
                    continue
                if watch.restart_at is None:
                    watch.restart_at = now + watch.backoff
                    log.warning(
                        "%s %s; restarting it in %.0f s (the other services keep running)",
                        component.name,
                        component.exit_reason(),
                        watch.backoff,
                    )
                    watch.backoff = min(watch.backoff * 2, MAX_BACKOFF)
                    continue
                if now < watch.restart_at:
                    continue
                watch.restart_at = None
                watch.restarts += 1
                try:
                    component.launch()
                    watch.up_since = time.monotonic()
                    log.info("restarted %s (restart %s)", component.name, watch.restarts)
                    if self.on_restart:
                        self.on_restart(component.name)
                except Exception as exc:
                    log.warning("could not restart %s: %s", component.name, exc)

    def run(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval):
            self.check()

    def stop_all(self) -> None:
        with self._lock:
            for watch in reversed(self._watches):
                log.info("stopping %s", watch.component.name)
                try:
                    watch.component.stop()
                except Exception as exc:  # keep stopping the rest
                    log.warning("could not stop %s cleanly: %s", watch.component.name, exc)


def port_owner(port: int, host: str = "127.0.0.1") -> str | None:
    """Who listens on ``port``: "PID 123 (postgres -D ...)", "another program", or None if free."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        if sock.connect_ex((host, port)) != 0:
            return None
    try:
        for conn in psutil.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                try:
                    proc = psutil.Process(conn.pid)
                    command = " ".join(proc.cmdline())[:120] or proc.name()
                except psutil.Error:
                    command = "unknown"
                return f"PID {conn.pid} ({command})"
    except psutil.Error:
        pass
    return "another program"


def port_taken_message(port: int, variable: str, owner: str) -> str:
    """What to tell a person whose port is taken, and what to do about it."""
    stop = f"stop it (kill {owner.split()[1]})" if owner.startswith("PID") else "stop it"
    return f"port {port} ({variable}) is taken by {owner}: {stop}, or set {variable} to a free port in .env"


class PostgresComponent(Component):
    """The embedded PostgreSQL (daemonized by pg_ctl: watched through its pid file and port).

    Someone may restart it by hand during an outage: then it is up again, but not ours, and
    ``stop`` leaves it running. The first restart waits a few seconds to give them the chance.
    """

    name = "PostgreSQL"
    first_delay = 10.0

    def __init__(self, server: EmbeddedPostgres) -> None:
        self.server = server

    def launch(self) -> None:
        self.server.start()

    def alive(self) -> bool:
        return self.server.serving()

    def exit_reason(self) -> str:
        return "is not running"

    def stop(self) -> None:
        self.server.stop()


class LabelStudioComponent(Component):
    name = "Label Studio"

    def __init__(self, server: LabelStudioServer) -> None:
        self.server = server

    def launch(self) -> None:
        self.server.launch()

    def alive(self) -> bool:
        return self.server.alive()

    def exit_reason(self) -> str:
        process = self.server.process
        code = process.returncode if process is not None else None
        if code is None:
            return "stopped"
        return f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"

    def stop(self) -> None:
        self.server.stop()
