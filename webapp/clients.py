"""Per-process clients for Label Studio and Airflow, built from the app's config."""

from __future__ import annotations

from flask import current_app

from include.airflow_client import AirflowClient
from include.labelstudio.client import LabelStudioClient
from include.labelstudio.dispatch import OutboxDispatcher
from include.runtime.asset_signaller import AssetSignaller


class NotConfigured(RuntimeError):
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


def airflow_client() -> AirflowClient:
    cfg = current_app.config
    if not cfg.get("AIRFLOW_API_URL") or not cfg.get("AIRFLOW_API_PASSWORD"):
        raise NotConfigured("Airflow is not configured: set AIRFLOW_API_URL, AIRFLOW_API_USER and AIRFLOW_API_PASSWORD")
    cache = current_app.extensions.setdefault("labelops.airflow", {})
    key = (cfg["AIRFLOW_API_URL"], cfg.get("AIRFLOW_API_USER"), cfg["AIRFLOW_API_PASSWORD"])
    if key not in cache:
        cache.clear()
        cache[key] = AirflowClient(
            cfg["AIRFLOW_API_URL"], cfg.get("AIRFLOW_API_USER") or "webapp", cfg["AIRFLOW_API_PASSWORD"]
        )
    return cache[key]


def label_dispatcher() -> OutboxDispatcher | None:
    """This process's outbox dispatcher (started on first use), or None when it is turned off
    (tests, or when a separate ``flask deliver-labels`` process does the delivering)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config.get("OUTBOX_DISPATCHER") or not app.config.get("LS_URL"):
        return None
    dispatcher = app.extensions.get("labelops.dispatcher")
    if dispatcher is None:
        url, token = app.config["LS_URL"], app.config["LS_API_TOKEN"]
        timeout = app.config.get("LS_TIMEOUT", 30)
        dispatcher = OutboxDispatcher(
            app.config["SQLALCHEMY_DATABASE_URI"],
            lambda: LabelStudioClient(url, token, timeout=timeout, retries=0),
            sweep=app.config.get("OUTBOX_SWEEP_SECONDS", 5.0),
        )
        app.extensions["labelops.dispatcher"] = dispatcher.start()
    return dispatcher


def wake_dispatcher() -> None:
    """A label was just committed: deliver it now rather than at the next sweep."""
    dispatcher = label_dispatcher()
    if dispatcher is not None:
        dispatcher.wake()


def asset_signaller() -> AssetSignaller | None:
    """This process's asset signaller (started on first use), or None when it is turned off
    (tests) or Airflow is not configured: webhooks then wait in the database for a process
    that has it, and the hourly export picks their labels up anyway."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config.get("ASSET_SIGNALLER") or not app.config.get("AIRFLOW_API_PASSWORD"):
        return None
    signaller = app.extensions.get("labelops.signaller")
    if signaller is None:
        url, user, password = (
            app.config["AIRFLOW_API_URL"],
            app.config.get("AIRFLOW_API_USER"),
            app.config["AIRFLOW_API_PASSWORD"],
        )
        signaller = AssetSignaller(
            app.config["SQLALCHEMY_DATABASE_URI"],
            lambda: AirflowClient(url, user or "webapp", password, timeout=5),
            sweep=app.config.get("OUTBOX_SWEEP_SECONDS", 5.0),
        )
        app.extensions["labelops.signaller"] = signaller.start()
    return signaller


def wake_signaller() -> None:
    """A webhook was just committed: tell Airflow now rather than at the next sweep."""
    signaller = asset_signaller()
    if signaller is not None:
        signaller.wake()
