"""Per-process clients and background workers, built from the app's config.

Label Studio and Airflow clients are cached per process; the background workers
(``include.workers``) start on first use and are woken when a request committed work for them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask, current_app

from include.airflow_client import AirflowClient
from include.errors import Unavailable
from include.labelstudio.client import LabelStudioClient
from include.services import pii
from include.workers.asset_signaller import AssetSignaller
from include.workers.job_reconciler import JobReconciler
from include.workers.label_dispatcher import OutboxDispatcher
from include.workers.pump import Pump


class NotConfigured(Unavailable):
    """A service the action needs is not configured; the message names the variable."""


def ls_client() -> LabelStudioClient:
    """A Label Studio client for this request (access tokens are cached per process)."""
    cfg = current_app.config
    if not cfg.get("LS_URL") or not cfg.get("LS_API_TOKEN"):
        raise NotConfigured("Label Studio is not configured: set LS_URL and LS_API_TOKEN")
    cache = current_app.extensions.setdefault("labelops.ls", {})
    key = (cfg["LS_URL"], cfg["LS_API_TOKEN"])
    if key not in cache:
        cache.clear()
        cache[key] = LabelStudioClient(cfg["LS_URL"], cfg["LS_API_TOKEN"], timeout=cfg.get("LS_TIMEOUT", 30), retries=1)
    return cache[key]


def _airflow_factory(app: Flask, timeout: float = 10) -> Callable[[], AirflowClient]:
    cfg = app.config
    url, user, password = cfg["AIRFLOW_API_URL"], cfg.get("AIRFLOW_API_USER") or "webapp", cfg["AIRFLOW_API_PASSWORD"]
    return lambda: AirflowClient(url, user, password, timeout=timeout)


def airflow_client() -> AirflowClient:
    cfg = current_app.config
    if not cfg.get("AIRFLOW_API_URL") or not cfg.get("AIRFLOW_API_PASSWORD"):
        raise NotConfigured("Airflow is not configured: set AIRFLOW_API_URL, AIRFLOW_API_USER and AIRFLOW_API_PASSWORD")
    cache = current_app.extensions.setdefault("labelops.airflow", {})
    key = (cfg["AIRFLOW_API_URL"], cfg.get("AIRFLOW_API_USER"), cfg["AIRFLOW_API_PASSWORD"])
    if key not in cache:
        cache.clear()
        cache[key] = _airflow_factory(current_app)()
    return cache[key]


def _worker(key: str, enabled: bool, build: Callable[[Flask], Pump]) -> Pump | None:
    """This process's worker ``key``, started on first use; None when turned off."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if not enabled:
        return None
    worker = app.extensions.get(key)
    if worker is None:
        worker = app.extensions[key] = build(app).start()
    return worker


def label_dispatcher() -> Pump | None:
    """The outbox dispatcher, or None when turned off (tests, or when a separate ``flask
    deliver-labels`` process does the delivering)."""
    cfg = current_app.config

    def build(app: Flask) -> Pump:
        url, token, timeout = app.config["LS_URL"], app.config["LS_API_TOKEN"], app.config.get("LS_TIMEOUT", 30)
        return OutboxDispatcher(
            app.config["SQLALCHEMY_DATABASE_URI"],
            lambda: LabelStudioClient(url, token, timeout=timeout, retries=0),
            sweep=app.config.get("OUTBOX_SWEEP_SECONDS", 5.0),
            slots=int(app.config.get("LS_WRITE_CONCURRENCY") or 1),
        )

    return _worker("labelops.dispatcher", bool(cfg.get("OUTBOX_DISPATCHER") and cfg.get("LS_URL")), build)


def asset_signaller() -> Pump | None:
    """The asset signaller, or None when turned off (tests) or Airflow is not configured:
    webhooks then wait in the database for a process that has it, and the hourly export picks
    their labels up anyway."""
    cfg = current_app.config

    def build(app: Flask) -> Pump:
        return AssetSignaller(
            app.config["SQLALCHEMY_DATABASE_URI"],
            _airflow_factory(app, timeout=5),
            sweep=app.config.get("OUTBOX_SWEEP_SECONDS", 5.0),
        )

    return _worker("labelops.signaller", bool(cfg.get("ASSET_SIGNALLER") and cfg.get("AIRFLOW_API_PASSWORD")), build)


def job_reconciler() -> Pump | None:
    """The job reconciler, or None when turned off (tests) or Airflow is not configured."""
    cfg = current_app.config

    def build(app: Flask) -> Pump:
        return JobReconciler(
            app.config["SQLALCHEMY_DATABASE_URI"],
            _airflow_factory(app, timeout=5),
            sweep=app.config.get("JOB_RECONCILE_SECONDS", 10.0),
        )

    enabled = bool(cfg.get("JOB_RECONCILER") and cfg.get("AIRFLOW_API_URL") and cfg.get("AIRFLOW_API_PASSWORD"))
    return _worker("labelops.reconciler", enabled, build)


def _wake(worker: Pump | None) -> None:
    if worker is not None:
        worker.wake()


def wake_dispatcher() -> None:
    """A label was just committed: deliver it now rather than at the next sweep, and let the
    signaller see whether the live loop is due (it counts from this database, not from Label
    Studio's webhooks, which the platform's own deliveries no longer start)."""
    _wake(label_dispatcher())
    signaller = asset_signaller()
    if isinstance(signaller, AssetSignaller):
        signaller.labels_committed()


def wake_signaller() -> None:
    """A webhook was just committed: tell Airflow now rather than at the next sweep."""
    _wake(asset_signaller())


def wake_reconciler() -> None:
    """Someone is looking at jobs: bring them in step with Airflow now (the page polls)."""
    _wake(job_reconciler())


def pii_keys() -> tuple[bytes, ...]:
    """PII_KEY, then PII_KEY_PREVIOUS: what opens a mapping while a rotation is under way.

    Raises:
        KeyUnavailable: PII_KEY is not set.
    """
    return pii.keys_of(current_app.config.get("PII_KEY"), current_app.config.get("PII_KEY_PREVIOUS") or ())


def pii_keys_if_set() -> tuple[bytes, ...] | None:
    """PII_KEY and PII_KEY_PREVIOUS when PII_KEY is set: the library refuses where it needs them."""
    return pii_keys() if current_app.config.get("PII_KEY") else None


def pii_key() -> bytes | None:
    """PII_KEY when set (hash and encrypt operators need it), else None."""
    raw = current_app.config.get("PII_KEY")
    return pii.key_of(raw) if raw else None


def pii_llm() -> Any:
    """A factory of the LLM recognizer (built from the environment's LLM settings), for policies
    that use it; it raises PolicyError when no LLM is configured."""

    def build() -> Any:
        from include.config import SettingsError, load_settings
        from include.pii.llm import llm_recognizer

        try:
            return llm_recognizer(load_settings())
        except SettingsError as exc:
            raise pii.PolicyError(f"the policy uses the LLM recognizer: {exc}") from None

    return build
