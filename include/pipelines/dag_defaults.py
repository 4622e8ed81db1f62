"""Defaults every LabelOps DAG shares (kept here so the DAG files stay about orchestration)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")


def default_args(retries: int = 2, retry_delay_minutes: int = 1) -> dict[str, Any]:
    return {"owner": "labelops", "retries": retries, "retry_delay": timedelta(minutes=retry_delay_minutes)}
