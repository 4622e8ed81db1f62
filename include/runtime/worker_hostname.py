"""Airflow's ``[core] hostname_callable`` for the Celery workers of ``make run --celery``.

Several workers share one machine there, so the machine's name alone cannot tell Airflow's
records (task instances, the UI) which worker ran a task. Each worker gets ``LABELOPS_WORKER``
(its queue), and the tasks it runs record ``<queue>@<machine>``, like Celery's own names.
"""

from __future__ import annotations

import os

from airflow.utils.net import getfqdn


def hostname() -> str:
    worker = os.environ.get("LABELOPS_WORKER")
    return f"{worker}@{getfqdn()}" if worker else getfqdn()
