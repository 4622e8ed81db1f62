"""Admin: a dataset's quality report (with charts and override), labeled-data downloads and
label snapshots. Overlap, thresholds and the live loop are settings (webapp.admin.settings)."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.errors import Invalid
from include.services import datasets, flags, guidelines, quality, snapshots
from include.services.export import FORMATS
from webapp.admin import bp
from webapp.admin.datasets import tab_page
from webapp.charts import draw
from webapp.downloads import export_response
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.guidelines import save_guidelines
from webapp.security import admin_required
from webapp.serializers import svg_response


def quality_view(dataset_id: int) -> Any:
    ds = datasets.get_dataset(db.session(), dataset_id)
    report = quality.latest(db.session(), ds.id)
    return render_template(
        "admin/quality.html",
        dataset=ds,
        report=report,
        failed=quality.failed_checks(report) if report else [],
        thresholds=quality.THRESHOLDS,
        values=quality.thresholds_of(ds),
        override=quality.Override.specs(),
        csrf_form=CsrfForm(),
    )


@bp.get("/datasets/<id:dataset_id>/quality")
@admin_required
def quality_page(dataset_id: int) -> Any:
    """The latest quality report: a chart of every check, its findings with links, and the gate."""
    return quality_view(dataset_id)


@bp.get("/datasets/<id:dataset_id>/quality/<name>.svg")
@admin_required
def quality_chart(dataset_id: int, name: str) -> Any:
    ds = datasets.get_dataset(db.session(), dataset_id)
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
@shown_on(quality_view)
def quality_override(dataset_id: int) -> Any:
    """Let import and training go ahead despite the failed report; the reason is on record."""
    checked(CsrfForm())
    report = quality.latest_or_missing(db.session(), dataset_id)
    values = quality.Override.parse(request.form.to_dict(), form=True)
    quality.override(db.session(), report, current_user, values.reason)
    db.session.commit()
    flash(_("The gate is overridden: import and training may go ahead. The reason is on record."), "success")
    return redirect(url_for("admin.quality_page", dataset_id=dataset_id))


@bp.get("/datasets/<id:dataset_id>/export.<fmt>")
@admin_required
@shown_on(lambda dataset_id, fmt: tab_page(dataset_id, "labeling"))
def export_download(dataset_id: int, fmt: str) -> Any:
    """The labeled rows as CSV, JSONL or Parquet, as Label Studio and the annotators see them."""
    if fmt not in FORMATS:
        abort(404)
    if request.args.get("originals"):
        raise Invalid("Originals are exported with the form on the dataset page, so that no link can reveal them.")
    ds = datasets.get_dataset(db.session(), dataset_id)
    return export_response(ds, fmt, originals=False, user=current_user)


@bp.post("/datasets/<id:dataset_id>/export.<fmt>/originals")
@admin_required
@shown_on(lambda dataset_id, fmt: tab_page(dataset_id, "labeling"))
def export_originals(dataset_id: int, fmt: str) -> Any:
    """The labeled rows before de-identification (audited). A POST with the CSRF token: a link
    or an image on another site cannot make an admin's browser reveal originals."""
    if fmt not in FORMATS:
        abort(404)
    checked(CsrfForm())
    ds = datasets.get_dataset(db.session(), dataset_id)
    return export_response(ds, fmt, originals=True, user=current_user)


@bp.post("/datasets/<id:dataset_id>/snapshots")
@admin_required
@shown_on(lambda dataset_id: tab_page(dataset_id, "labeling"))
def take_snapshot(dataset_id: int) -> Any:
    """Freeze the labels as a versioned snapshot (the latest one again when nothing changed)."""
    checked(CsrfForm())
    taken = snapshots.take(db.session(), datasets.get_dataset(db.session(), dataset_id))
    db.session.commit()
    snap = taken.snapshot
    if taken.created:
        flash(_("Snapshot v%(v)s: %(n)s labels.", v=snap.version, n=snap.rows), "success")
    else:
        flash(_("The labels have not changed since snapshot v%(v)s.", v=snap.version), "info")
    return redirect(url_for("admin.dataset_tab", dataset_id=dataset_id, tab="labeling", _anchor="export"))


@bp.post("/datasets/<id:dataset_id>/guidelines")
@admin_required
@shown_on(lambda dataset_id: tab_page(dataset_id, "labeling"))
def save_guidelines_view(dataset_id: int) -> Any:
    """Save the dataset's guidelines and label descriptions (a new version when they changed)."""
    checked(CsrfForm())
    dataset = datasets.get_dataset(db.session(), dataset_id)
    body = guidelines.Guidelines.parse(request.form.to_dict(), form=True)
    _, message = save_guidelines(dataset, body, current_user)
    flash(message, "success")
    return redirect(url_for("admin.dataset_tab", dataset_id=dataset_id, tab="labeling", _anchor="guidelines"))


@bp.post("/datasets/<id:dataset_id>/flags/<bigid:flag_id>/resolve")
@admin_required
@shown_on(lambda dataset_id, flag_id: tab_page(dataset_id, "labeling"))
def resolve_flag_view(dataset_id: int, flag_id: int) -> Any:
    """Close a flag: its task can be assigned again."""
    checked(CsrfForm())
    resolved = flags.resolve(db.session(), dataset_id, flag_id, current_user)
    db.session.commit()
    flash(_("Flag on task %(id)s resolved: the task can be assigned again.", id=resolved.task_id), "success")
    return redirect(url_for("admin.dataset_tab", dataset_id=dataset_id, tab="labeling", _anchor="flags"))
