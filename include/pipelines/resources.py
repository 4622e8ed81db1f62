"""Resolve the platform database and Label Studio for a pipeline run.

In Airflow the platform database comes from the ``labelops_db`` connection (through the
Postgres provider, so a secrets backend works too) and Label Studio from ``labelstudio_default``
(include.labelstudio.hook); elsewhere from DATABASE_URL and LS_URL / LS_API_TOKEN.
"""

from __future__ import annotations

import logging
import os

from include.config import Settings, load_settings, normalize_database_url
from include.labelstudio.client import LabelStudioClient

log = logging.getLogger(__name__)

PLATFORM_CONN_ID = "labelops_db"


def platform_db_url(settings: Settings | None = None) -> str:
    """The platform database URL.

    Order: the ``labelops_db`` connection given as an environment variable, then DATABASE_URL,
    then the ``labelops_db`` connection from Airflow's metadata database or secrets backend (a
    lookup through the API server, so it comes last).
    """
    if os.environ.get(f"AIRFLOW_CONN_{PLATFORM_CONN_ID.upper()}"):
        return _airflow_connection_url()
    settings = settings or load_settings()
    if settings.database_url:
        return settings.database_url
    if os.environ.get("AIRFLOW_HOME"):
        try:
            return _airflow_connection_url()
        except Exception as exc:  # the connection is optional
            log.debug("no Airflow connection %s: %s", PLATFORM_CONN_ID, exc)
    return settings.require("database_url")


def _airflow_connection_url() -> str:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    return normalize_database_url(PostgresHook(postgres_conn_id=PLATFORM_CONN_ID).get_uri())


def ls_client(settings: Settings | None = None) -> LabelStudioClient:
    """A Label Studio client.

    Order, as for the database: the ``labelstudio_default`` connection given as an environment
    variable, then LS_URL / LS_API_TOKEN / LS_TIMEOUT, then the connection from Airflow's
    metadata database or secrets backend.
    """
    from include.labelstudio.hook import CONN_ID

    settings = settings or load_settings()
    if os.environ.get(f"AIRFLOW_CONN_{CONN_ID.upper()}"):
        return _ls_hook_client(settings)
    if settings.ls_url:
        return LabelStudioClient(settings.ls_url, settings.require("ls_api_token"), timeout=settings.ls_timeout)
    if os.environ.get("AIRFLOW_HOME"):
        try:
            return _ls_hook_client(settings)
        except Exception as exc:  # the connection is optional
            log.debug("no Airflow connection %s: %s", CONN_ID, exc)
    return LabelStudioClient(settings.require("ls_url"), settings.require("ls_api_token"), timeout=settings.ls_timeout)


def _ls_hook_client(settings: Settings) -> LabelStudioClient:
    from include.labelstudio.hook import LabelStudioHook

    return LabelStudioHook(timeout=settings.ls_timeout).get_conn()
