"""Gunicorn's settings for the web app, read by ``make run`` and docker-compose (``-c``).

gthread workers: a press is a few short queries, so threads overlap their waits on PostgreSQL,
and a worker per core does the Python. The defaults are what bench/load.py measured best for 50
annotators on a 2-core machine (figures in README); WEB_WORKERS and WEB_THREADS override them.
Each worker opens at most WEB_THREADS + 2 connections for requests and a few for its background
threads (webapp.config): keep WEB_WORKERS x (WEB_THREADS + 8) under PostgreSQL's max_connections
with Airflow's share left over.
"""

from __future__ import annotations

import os

from include.config import WEB_THREADS_DEFAULT, WEB_WORKERS_DEFAULT

worker_class = "gthread"
workers = int(os.environ.get("WEB_WORKERS") or WEB_WORKERS_DEFAULT)
threads = int(os.environ.get("WEB_THREADS") or WEB_THREADS_DEFAULT)
# Outlasts Label Studio's 100 s wait on the ML backend's predict.
timeout = 130
graceful_timeout = 30
keepalive = 5
