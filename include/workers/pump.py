"""A background thread that does rounds of work: at once when woken, and every ``sweep`` seconds.

Used by the web processes for work that must not hold up a request (delivering labels to Label
Studio, telling Airflow about webhooks). Written here rather than taken from a task queue: the
work is already durable in PostgreSQL, so a thread per process that polls it is all it needs.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Pump:
    """Subclasses implement :meth:`round`; it returns True when more work is due at once."""

    name = "pump"

    def __init__(self, sweep: float = 5.0) -> None:
        self.sweep = sweep
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def round(self) -> bool:
        raise NotImplementedError

    def start(self) -> Pump:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                more = self.round()
                self.rounds += 1
                if more:
                    continue
            except Exception as exc:  # the database or the remote service is away: try again later
                log.warning("%s round failed (will retry): %s", self.name, exc)
            self._wake.wait(self.sweep)
