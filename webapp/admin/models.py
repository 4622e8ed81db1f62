"""Admin: the model registry, a model's evaluation report, experiments and their comparison."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.db.models import Experiment
from include.services import evaluations
from include.services.experiments import get_experiment, progress_message
from include.services.registry import get_model_version, registry_rows
from webapp.admin import bp
from webapp.charts import draw, epochs_of
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.runs import stop_experiment
from webapp.security import admin_required
from webapp.serializers import experiment_json, svg_response

MODEL_CHARTS = ("confusion", "pr", "roc", "reliability", "histogram")


@bp.get("/models")
@admin_required
def models() -> Any:
    """The model registry: every trained head (and LLM baseline), whether it was promoted, and why."""
    return render_template("admin/models.html", rows=registry_rows(db.session()))


@bp.get("/models/<id:model_id>")
@admin_required
def model(model_id: int) -> Any:
    """One model version: the gate's decision and its evaluation report, drawn."""
    row = get_model_version(db.session(), model_id)
    evaluation = evaluations.latest(db.session(), model_id)
    return render_template(
        "admin/model.html",
        model=row,
        evaluation=evaluation,
        report=evaluation.report if evaluation else None,
        charts=MODEL_CHARTS,
    )


@bp.get("/models/<id:model_id>/charts/<name>.svg")
@admin_required
def model_chart(model_id: int, name: str) -> Any:
    if name not in MODEL_CHARTS:
        abort(404)
    return svg_response(draw(name, evaluations.latest_report(db.session(), model_id).report))


@bp.get("/experiments/<id:experiment_id>")
@admin_required
def experiment(experiment_id: int) -> Any:
    """One training run: hyperparameters, data, and loss and F1 epoch by epoch."""
    return experiment_view(experiment_id)


def experiment_view(experiment_id: int) -> Any:
    run = get_experiment(db.session(), experiment_id)
    return render_template(
        "admin/experiment.html", run=run, csrf_form=CsrfForm(), message=progress_message(db.session(), run)
    )


@bp.get("/experiments/<id:experiment_id>.json")
@admin_required
def experiment_status(experiment_id: int) -> Any:
    """What the page polls while the run trains: status, epochs so far, the latest progress line."""
    run = get_experiment(db.session(), experiment_id)
    response = jsonify(experiment_json(run, progress_message(db.session(), run)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/experiments/<id:experiment_id>/stop")
@admin_required
@shown_on(experiment_view)
def stop_experiment_view(experiment_id: int) -> Any:
    """Stop a running training run; its epochs so far stay on this page."""
    checked(CsrfForm())
    flash(stop_experiment(experiment_id, current_user), "success")
    return redirect(url_for("admin.experiment", experiment_id=experiment_id))


@bp.get("/experiments/<id:experiment_id>/training.svg")
@admin_required
def experiment_chart(experiment_id: int) -> Any:
    return svg_response(draw("training", epochs_of(get_experiment(db.session(), experiment_id))))


def _chosen_experiments() -> list[Experiment]:
    raw = request.args.getlist("ids") or (request.args.get("ids", "").split(",") if request.args.get("ids") else [])
    ids = []
    for part in raw:
        for piece in str(part).split(","):
            if piece.strip().isascii() and piece.strip().isdigit() and len(piece.strip()) < 10:
                ids.append(int(piece.strip()))
    runs = [r for r in (db.session.get(Experiment, i) for i in dict.fromkeys(ids)) if r is not None]
    return runs[:5]


@bp.get("/experiments/compare")
@admin_required
def compare() -> Any:
    """Two to five experiments side by side: curves overlaid, and which hyperparameters differ."""
    runs = _chosen_experiments()
    if len(runs) < 2:
        flash(_("Choose two to five experiments to compare (tick them in the models table)."), "info")
        return redirect(url_for("admin.models"))
    keys = sorted({k for r in runs for k in r.params} - {"data_snapshot", "labels"})
    differing = [k for k in keys if len({repr(r.params.get(k)) for r in runs}) > 1]
    same = [k for k in keys if k not in differing]
    return render_template(
        "admin/compare.html", runs=runs, differing=differing, same=same, ids=",".join(str(r.id) for r in runs)
    )


@bp.get("/experiments/compare.svg")
@admin_required
def compare_chart() -> Any:
    runs = _chosen_experiments()
    return svg_response(draw("comparison", [epochs_of(r) for r in runs]))
