"""Admin: a dataset's training configs (YAML): upload with line-by-line errors, view, and compare a sweep."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.errors import Invalid, TooLarge
from include.ml.training.configs import MAX_BYTES
from include.services import datasets, training_configs
from include.services.training_configs import ConfigBody
from webapp.admin import bp
from webapp.admin.datasets import tab_page
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.security import admin_required


def config_text() -> str:
    """The uploaded file's text, else the pasted text.

    Raises:
        TooLarge: the file is over 5 MB. Invalid: it is not UTF-8, or there is nothing.
    """
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise TooLarge(f"That file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Invalid("That file is not UTF-8 text.") from None
    if request.form.get("yaml", "").strip():
        return request.form["yaml"]
    raise Invalid("Choose a YAML file or paste one.")


@bp.post("/datasets/<id:dataset_id>/training-configs")
@admin_required
@shown_on(lambda dataset_id: tab_page(dataset_id, "models"))
def upload_training_config(dataset_id: int) -> Any:
    """Save a training config; a bad one is refused with each problem's line and key."""
    checked(CsrfForm())
    ds = datasets.get_dataset(db.session(), dataset_id)
    body = ConfigBody.parse({"name": request.form.get("name", ""), "yaml": config_text()}, form=True)
    row = training_configs.save(db.session(), ds, body.name, body.yaml, current_user)
    db.session.commit()
    what = f"a sweep of {row.sweep['trials']} trials" if row.sweep else "a training config"
    flash(f"Saved “{row.name}”, {what}.", "success")
    return redirect(url_for("admin.dataset_tab", dataset_id=ds.id, tab="models", _anchor="training-configs"))


@bp.get("/datasets/<id:dataset_id>/training-configs/<id:config_id>.yaml")
@admin_required
def training_config_text(dataset_id: int, config_id: int) -> Any:
    row = training_configs.get(db.session(), dataset_id, config_id)
    return current_app.response_class(row.body, mimetype="text/plain; charset=utf-8")


@bp.get("/datasets/<id:dataset_id>/training-configs/<id:config_id>/compare")
@admin_required
def compare_sweep(dataset_id: int, config_id: int) -> Any:
    """The latest sweep of this config, its best trials side by side (the comparison view)."""
    row = training_configs.get(db.session(), dataset_id, config_id)
    ids = training_configs.latest_sweep_experiments(db.session(), dataset_id, row.name)
    if len(ids) < 2:
        flash(_("“%(name)s” has no finished sweep with two trials yet.", name=row.name), "info")
        return redirect(url_for("admin.dataset_tab", dataset_id=dataset_id, tab="models", _anchor="training-configs"))
    return redirect(url_for("admin.compare", ids=",".join(str(i) for i in ids)))
