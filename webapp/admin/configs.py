"""Admin: a dataset's training configs (YAML): upload with line-by-line errors, view, and compare a sweep."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, url_for
from flask_login import current_user

from include.ml.training.configs import MAX_BYTES, ConfigError
from include.services import training_configs
from webapp.admin import bp
from webapp.admin.common import dataset_or_404
from webapp.admin.forms import TrainingConfigForm
from webapp.extensions import db
from webapp.security import admin_required


def config_text(form: TrainingConfigForm) -> str | None:
    """The uploaded file's text, else the pasted text; None (with a flash) when unusable."""
    upload = form.file.data
    if upload and getattr(upload, "filename", ""):
        raw = upload.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            flash(f"That file is larger than {MAX_BYTES // (1024 * 1024)} MB.", "error")
            return None
        try:
            return str(raw.decode("utf-8"))
        except UnicodeDecodeError:
            flash("That file is not UTF-8 text.", "error")
            return None
    if form.body.data:
        return str(form.body.data)
    flash("Choose a YAML file or paste one.", "error")
    return None


@bp.post("/datasets/<id:dataset_id>/training-configs")
@admin_required
def upload_training_config(dataset_id: int) -> Any:
    """Save a training config; a bad one is refused with each problem's line and key."""
    ds = dataset_or_404(dataset_id)
    form = TrainingConfigForm()
    back = redirect(url_for("admin.dataset", dataset_id=ds.id, _anchor="training-configs"))
    if not form.validate_on_submit():
        flash(" ".join(e for errs in form.errors.values() for e in errs), "error")
        return back
    text = config_text(form)
    if text is None:
        return back
    try:
        row = training_configs.save(db.session(), ds, form.name.data or "", text, current_user)
        db.session.commit()
    except ConfigError as exc:
        db.session.rollback()
        flash("The config was not saved: " + "; ".join(str(p) for p in exc.problems), "error")
        return back
    what = f"a sweep of {row.sweep['trials']} trials" if row.sweep else "a training config"
    flash(f"Saved “{row.name}”, {what}.", "success")
    return back


@bp.get("/datasets/<id:dataset_id>/training-configs/<id:config_id>.yaml")
@admin_required
def training_config_text(dataset_id: int, config_id: int) -> Any:
    try:
        row = training_configs.get(db.session(), dataset_id, config_id)
    except training_configs.TrainingConfigNotFound:
        abort(404)
    return current_app.response_class(row.body, mimetype="text/plain; charset=utf-8")


@bp.get("/datasets/<id:dataset_id>/training-configs/<id:config_id>/compare")
@admin_required
def compare_sweep(dataset_id: int, config_id: int) -> Any:
    """The latest sweep of this config, its best trials side by side (the comparison view)."""
    try:
        row = training_configs.get(db.session(), dataset_id, config_id)
    except training_configs.TrainingConfigNotFound:
        abort(404)
    ids = training_configs.latest_sweep_experiments(db.session(), dataset_id, row.name)
    if len(ids) < 2:
        flash(f"“{row.name}” has no finished sweep with two trials yet.", "info")
        return redirect(url_for("admin.dataset", dataset_id=dataset_id, _anchor="training-configs"))
    return redirect(url_for("admin.compare", ids=",".join(str(i) for i in ids)))
