"""Admin pages, one module per area: datasets (and their tabs), settings, tasks, users, pipelines
(and jobs), models, privacy, data quality and downloads, batch inference, training configs."""

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
    settings,
    tasks,
    users,
)
