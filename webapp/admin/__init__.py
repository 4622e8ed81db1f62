"""Admin pages, one module per area: datasets, tasks, users, pipelines (and jobs), models."""

from flask import Blueprint

bp = Blueprint("admin", __name__)

from webapp.admin import datasets, models, pipelines, tasks, users  # noqa: E402, F401
