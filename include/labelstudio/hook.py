"""Label Studio as an Airflow connection (``labelstudio_default``), so its token can live in a
secrets backend like the database's. A thin hook: the connection's host (with scheme) or
schema/host/port is the URL, its password the token, ``extra.timeout`` the request timeout.

Imported only where Airflow is installed and a connection is wanted; LS_URL / LS_API_TOKEN keep
working without it (``make run`` uses them).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from include.labelstudio.client import LabelStudioClient

CONN_ID = "labelstudio_default"


def connection_url(conn: Any) -> str:
    """The base URL from a connection: ``http://host:port`` in the host field, or pieces of it."""
    host = str(conn.host or "").rstrip("/")
    if host.startswith(("http://", "https://")):
        return f"{host}:{conn.port}" if conn.port and host.count(":") < 2 else host
    scheme = conn.schema or "http"
    return f"{scheme}://{host}" + (f":{conn.port}" if conn.port else "")


class LabelStudioHook(BaseHook):
    """A :class:`LabelStudioClient` from an Airflow connection."""

    conn_name_attr = "labelstudio_conn_id"
    default_conn_name = CONN_ID
    conn_type = "http"
    hook_name = "Label Studio"

    def __init__(self, labelstudio_conn_id: str = CONN_ID, timeout: float = 60.0) -> None:
        super().__init__()
        self.labelstudio_conn_id = labelstudio_conn_id
        self.timeout = timeout

    def get_conn(self) -> LabelStudioClient:
        conn = self.get_connection(self.labelstudio_conn_id)
        if not conn.host or not conn.password:
            raise ValueError(f"connection {self.labelstudio_conn_id} needs a host (the URL) and a password (the token)")
        timeout = float(conn.extra_dejson.get("timeout", self.timeout))
        return LabelStudioClient(connection_url(conn), str(conn.password), timeout=timeout)
