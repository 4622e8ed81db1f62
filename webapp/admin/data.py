"""Admin: a dataset's quality report (with charts, override and thresholds), overlap and
agreement, labeled-data downloads and label snapshots."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from include.params import ParamError
from include.services import live_loop, quality, retune, snapshots
from include.services.export import FORMATS
from webapp.admin import bp
from webapp.admin.common import dataset_or_404
from webapp.charts import draw
from webapp.downloads import DownloadRefused, export_response
from webapp.extensions import db
from webapp.forms import CsrfForm
from webapp.security import admin_required
from webapp.serializers import svg_response


@bp.get("/datasets/<id:dataset_id>/quality")
@admin_required
def quality_page(dataset_id: int) -> Any:
    """The latest quality report: a chart of every check, its findings with links, and the gate."""
    ds = dataset_or_404(dataset_id)
    report = quality.latest(db.session(), ds.id)
    return render_template(
        "admin/quality.html",
        dataset=ds,
        report=report,
        failed=quality.failed_checks(report) if report else [],
        thresholds=quality.THRESHOLDS,
        values=quality.thresholds_of(ds),
        csrf_form=CsrfForm(),
    )


@bp.get("/datasets/<id:dataset_id>/quality/<name>.svg")
@admin_required
def quality_chart(dataset_id: int, name: str) -> Any:
    ds = dataset_or_404(dataset_id)
    report = quality.latest(db.session(), ds.id)
    checks = report.checks["checks"] if report else {}
    if name == "quality":
        data: Any = checks
    elif name in ("lengths", "scripts"):
        data = checks.get(name, {})
    elif name == "agreement":
        data = quality.agreement(db.session(), ds)
    else:
        abort(404)
    return svg_response(draw(name, data))


@bp.post("/datasets/<id:dataset_id>/quality/override")
@admin_required
def quality_override(dataset_id: int) -> Any:
    ds = dataset_or_404(dataset_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    report = quality.latest(db.session(), ds.id) or abort(404)
    try:
        quality.override(db.session(), report, current_user, request.form.get("reason", ""))
        db.session.commit()
    except ValueError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash("The gate is overridden: import and training may go ahead. The reason is on record.", "success")
    return redirect(url_for("admin.quality_page", dataset_id=ds.id))


@bp.post("/datasets/<id:dataset_id>/quality/thresholds")
@admin_required
def quality_thresholds(dataset_id: int) -> Any:
    ds = dataset_or_404(dataset_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        quality.set_thresholds(db.session(), ds, {s.name: request.form.get(s.name) for s in quality.THRESHOLDS})
        db.session.commit()
    except ParamError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash("Thresholds saved: they apply from the next quality check.", "success")
    return redirect(url_for("admin.quality_page", dataset_id=ds.id) + "#thresholds")


@bp.post("/datasets/<id:dataset_id>/overlap")
@admin_required
def overlap(dataset_id: int) -> Any:
    """The share of each auto-assignment that also goes to a second annotator."""
    ds = dataset_or_404(dataset_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        share = float(request.form.get("overlap_percent", "")) / 100
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        flash("The overlap is a percentage between 0 and 100.", "error")
    else:
        ds.overlap_share = share
        db.session.commit()
        flash(f"{share:.0%} of each auto-assignment will also go to a second annotator.", "success")
    return redirect(url_for("admin.dataset", dataset_id=ds.id) + "#agreement")


@bp.post("/datasets/<id:dataset_id>/live-loop")
@admin_required
def live_loop_setting(dataset_id: int) -> Any:
    """After how many new labels the dataset retrains on its own (empty: only nightly)."""
    ds = dataset_or_404(dataset_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    raw = request.form.get("retrain_after_labels", "").strip()
    try:
        live_loop.set_threshold(ds, int(raw) if raw else None)
    except ValueError:
        flash(
            f"Retrain after: a whole number from 1 to {live_loop.MAX_RETRAIN_AFTER:,}, or empty to turn it off.",
            "error",
        )
    else:
        db.session.commit()
        if ds.retrain_after_labels is None:
            flash("The live loop is off for this dataset: it retrains nightly.", "success")
        else:
            flash(f"The dataset retrains as soon as {ds.retrain_after_labels} new labels arrive.", "success")
    return redirect(url_for("admin.dataset", dataset_id=ds.id) + "#live-loop")


@bp.post("/datasets/<id:dataset_id>/retune")
@admin_required
def retune_setting(dataset_id: int) -> Any:
    """At how many labeled tasks the loop fine-tunes the dataset's encoder (0: never; empty: automatic)."""
    ds = dataset_or_404(dataset_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    raw = request.form.get("retune_at_labels", "").strip()
    try:
        retune.set_threshold(ds, int(raw) if raw else None)
    except ValueError:
        flash(
            f"Retune at: a whole number from {retune.MIN_RETUNE_AT} to {retune.MAX_RETUNE_AT:,}, 0 for never, "
            "or empty for automatic.",
            "error",
        )
    else:
        db.session.commit()
        if ds.retune_at_labels is None:
            flash(
                f"Automatic: the loop fine-tunes the encoder at {retune.AUTO_RETUNE_AT} labeled tasks where "
                "training runs on a GPU, never on a CPU-only worker.",
                "success",
            )
        elif ds.retune_at_labels == 0:
            flash("The loop never fine-tunes this dataset's encoder.", "success")
        else:
            flash(
                f"The loop fine-tunes the encoder at {ds.retune_at_labels} labeled tasks and each time they double.",
                "success",
            )
    return redirect(url_for("admin.dataset", dataset_id=ds.id) + "#live-loop")


@bp.get("/datasets/<id:dataset_id>/export.<fmt>")
@admin_required
def export_download(dataset_id: int, fmt: str) -> Any:
    """The labeled rows as CSV, JSONL or Parquet (``?originals=1``: before de-identification, audited)."""
    ds = dataset_or_404(dataset_id)
    if fmt not in FORMATS:
        abort(404)
    try:
        return export_response(ds, fmt, originals=request.args.get("originals") == "1", user=current_user)
    except DownloadRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.dataset", dataset_id=ds.id) + "#export")


@bp.post("/datasets/<id:dataset_id>/snapshots")
@admin_required
def take_snapshot(dataset_id: int) -> Any:
    ds = dataset_or_404(dataset_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    try:
        taken = snapshots.take(db.session(), ds)
        db.session.commit()
    except snapshots.SnapshotError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        snap = taken.snapshot
        if taken.created:
            flash(f"Snapshot v{snap.version}: {snap.rows} labels.", "success")
        else:
            flash(f"The labels have not changed since snapshot v{snap.version}.", "info")
    return redirect(url_for("admin.dataset", dataset_id=ds.id) + "#export")
