"""Defaults every LabelOps DAG shares (kept here so the DAG files stay about orchestration)."""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import Asset, AssetOrTimeSchedule, CronTriggerTimetable

from include.pipelines import assets

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")

# The live loop (include.pipelines.assets): Label Studio webhooks -> ls_export -> the loop.
ANNOTATIONS_CHANGED = Asset(name="labelstudio_annotations", uri=assets.ANNOTATIONS_CHANGED, group="labelops")
LABELS_READY = Asset(name="labels_ready", uri=assets.LABELS_READY, group="labelops")


def on_clock_or(cron: str, asset: Asset) -> AssetOrTimeSchedule:
    """Run on the clock (reconciliation: nothing depends on a webhook arriving) and on each event."""
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"), assets=asset)


def default_args(retries: int = 2) -> dict[str, Any]:
    """Owner and retries. The delay before a retry is the deployment's ``[core]
    default_task_retry_delay`` (``make run`` and docker-compose set 60 s; tests set less)."""
    return {"owner": "labelops", "retries": retries}


def on_gpu(**task_kwargs: Any) -> dict[str, Any]:
    """Task arguments that route a step to the GPU workers: queue and pool ``gpu``.

    GPU_EXECUTOR names the executor of those workers when it differs from the default one
    (for example the KubernetesExecutor next to a LocalExecutor).
    """
    return {"queue": "gpu", "pool": "gpu", "executor": os.environ.get("GPU_EXECUTOR") or None, **task_kwargs}
