"""Admin: the model registry and experiments."""

from __future__ import annotations

from typing import Any

from flask import abort, render_template

from include.db.models import Experiment
from include.services.registry import registry_rows
from webapp.admin import bp
from webapp.extensions import db
from webapp.security import admin_required


@bp.get("/models")
@admin_required
def models() -> Any:
    """The model registry: every trained head, whether it was promoted, and why."""
    return render_template("admin/models.html", rows=registry_rows(db.session()))


@bp.get("/experiments/<id:experiment_id>")
@admin_required
def experiment(experiment_id: int) -> Any:
    """One training run: hyperparameters, data, and metrics epoch by epoch."""
    run = db.session.get(Experiment, experiment_id)
    if run is None:
        abort(404)
    return render_template("admin/experiment.html", run=run)
