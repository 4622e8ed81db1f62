"""Admin pages, one module per area: datasets, tasks, users, pipelines (and jobs), models, privacy,
data quality and downloads, batch inference."""

from flask import Blueprint

bp = Blueprint("admin", __name__)

from webapp.admin import (  # noqa: E402, F401
    configs,
    data,
    datasets,
    inference,
    models,
    pipelines,
    privacy,
    tasks,
    users,
)
