"""Admin: the dashboard, datasets (create, upload, delete), the dataset's tabs and auto-assignment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.demo.texts import generate_demo_texts
from include.errors import Invalid
from include.pipelines.catalog import PIPELINES
from include.services import dataset_view, datasets, flags, gold, performance, pii, privacy, review
from include.services.assignment import AutoAssignRequest, auto_assign_request
from include.services.deletion import delete_dataset
from include.services.evaluations import learning_curve
from include.services.export import FORMATS as EXPORT_FORMATS
from include.services.jobs import recent_jobs
from include.services.label_outbox import summary as outbox_summary
from include.services.stats import dataset_stats, labels_per_day
from webapp.admin import bp
from webapp.admin.common import flash_report
from webapp.charts import draw
from webapp.clients import ls_client, pii_key
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.security import admin_required
from webapp.serializers import csv_response, svg_response

PEOPLE_CHARTS = ("throughput", "lead-times", "gold", "gold-trend")

SOURCES = (("upload", "Upload a CSV or JSONL file"), ("demo", "Generate demo texts"), ("empty", "Start empty"))


@bp.get("/")
@admin_required
def dashboard() -> Any:
    """Datasets with their progress, and the latest jobs."""
    rows = [(d, dataset_stats(db.session(), d)) for d in datasets.list_datasets(db.session(), newest_first=True)]
    return render_template(
        "admin/dashboard.html",
        rows=rows,
        jobs=recent_jobs(db.session(), 8),
        outbox=outbox_summary(db.session()),
        alerts=gold.open_alerts(db.session()),
        reviews_waiting=review.queue_size(db.session(), current_user, review.ReviewQueueQuery()),
    )


def new_dataset_page(values: dict[str, Any] | None = None) -> Any:
    """The new-dataset form (again, with what was typed, when it was refused)."""
    shown = values or {"labels": list(current_app.config["DEFAULT_LABELS"]), "demo": 100}
    return render_template(
        "admin/dataset_new.html", specs=datasets.NewDataset.specs(), values=shown, sources=SOURCES,
        source=request.form.get("source", "upload"), text_column=request.form.get("text_column", "text"),
        privacy_names=privacy.PrivacyChoice.names(), policies=pii.list_policies(db.session()),
        default_policy=privacy.default_policy(db.session()),
    )  # fmt: skip


def _items_of_form(source: str, *, demo: int = 0, keep_columns: Sequence[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """The rows the form asks for: an upload, generated demo texts, or none."""
    if source == "upload":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise Invalid("choose a file to upload, or pick another source")
        parsed = datasets.parse_upload(
            upload.read(),
            upload.filename,
            text_column=request.form.get("text_column") or "text",
            max_rows=current_app.config["UPLOAD_MAX_ROWS"],
            keep_columns=keep_columns,
        )
        if parsed.dropped_columns:
            said = _(
                "Not kept (they may hold personal data): %(columns)s. Name a column under Columns to keep to keep "
                "it, de-identified with the text.",
                columns=", ".join(parsed.dropped_columns),
            )
            flash(said, "info")
        return parsed.rows
    if source == "demo":
        return [(t.text, {"demo": True}) for t in generate_demo_texts(demo or 100)]
    return []


@bp.get("/datasets/new")
@admin_required
def new_dataset() -> Any:
    """Create a dataset from an upload, the demo generator, or empty."""
    return new_dataset_page()


@bp.post("/datasets/new")
@admin_required
@shown_on(lambda: new_dataset_page(request.form.to_dict()))
def create_dataset() -> Any:
    """Create the dataset the form describes, with its first items."""
    checked(CsrfForm())
    values = datasets.NewDataset.parse(request.form.to_dict(), form=True)
    rows = _items_of_form(
        request.form.get("source", "upload"), demo=values.demo, keep_columns=values.keep_columns or ()
    )
    dataset, report = datasets.create_with_items(
        db.session(),
        values,
        rows,
        default_labels=current_app.config["DEFAULT_LABELS"],
        created_by=current_user,
        key=pii_key(),
    )
    db.session.commit()
    flash(_("Dataset “%(name)s” created.", name=dataset.name), "success")
    if rows:
        flash_report(report)
    return redirect(url_for("admin.dataset", dataset_id=dataset.id))


def tab_page(dataset_id: int, tab: str = "overview") -> Any:
    """One tab of the dataset's page, from its view model (include.services.dataset_view)."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    view = dataset_view.TAB_VIEWS[tab](db.session(), dataset)
    return render_template(
        f"admin/dataset/{tab}.html",
        view=view,
        dataset=dataset,
        tab=tab,
        tabs=dataset_view.TABS,
        pipelines=PIPELINES,
        ls_public_url=current_app.config.get("LS_PUBLIC_URL"),
        pii_key_set=bool(current_app.config.get("PII_KEY")),
        export_formats=list(EXPORT_FORMATS),
        auto_assign=AutoAssignRequest.specs(),
        flag_titles=flags.TITLES,
        csrf_form=CsrfForm(),
    )


@bp.get("/datasets/<id:dataset_id>")
@admin_required
def dataset(dataset_id: int) -> Any:
    """One dataset: its overview tab."""
    return tab_page(dataset_id)


@bp.get("/datasets/<id:dataset_id>/<any(labeling, 'quality-privacy', models, people, settings):tab>")
@admin_required
def dataset_tab(dataset_id: int, tab: str) -> Any:
    """One dataset: another of its tabs."""
    return tab_page(dataset_id, tab)


@bp.get("/datasets/<id:dataset_id>/charts/<name>.svg")
@admin_required
def dataset_chart(dataset_id: int, name: str) -> Any:
    """The dataset's pictures: learning curve, label distribution, labels per day per annotator."""
    ds = datasets.get_dataset(db.session(), dataset_id)
    if name == "learning":
        data: Any = learning_curve(db.session(), ds.id)
    elif name == "labels":
        data = dataset_stats(db.session(), ds)["labels"]
    elif name == "daily":
        data = labels_per_day(db.session(), ds.id)
    else:
        abort(404)
    return svg_response(draw(name, data))


@bp.get("/datasets/<id:dataset_id>/people/<name>.svg")
@admin_required
def people_chart(dataset_id: int, name: str) -> Any:
    """Annotator performance pictures: throughput, lead-times, gold, gold-trend."""
    if name not in PEOPLE_CHARTS:
        abort(404)
    ds = datasets.get_dataset(db.session(), dataset_id)
    return svg_response(draw(name, performance.as_json(performance.report(db.session(), ds))))


@bp.get("/datasets/<id:dataset_id>/people.csv")
@admin_required
def people_csv(dataset_id: int) -> Any:
    """Everyone's figures on the dataset as CSV."""
    ds = datasets.get_dataset(db.session(), dataset_id)
    return csv_response(performance.csv_bytes(performance.report(db.session(), ds)), f"{ds.name}-annotators.csv")


@bp.post("/datasets/<id:dataset_id>/gold-alerts/<id:alert_id>/clear")
@admin_required
@shown_on(lambda dataset_id, alert_id: tab_page(dataset_id, "people"))
def clear_gold_alert(dataset_id: int, alert_id: int) -> Any:
    """The admin has dealt with an annotator's gold alert."""
    checked(CsrfForm())
    datasets.get_dataset(db.session(), dataset_id)
    alert = gold.clear_alert(db.session(), alert_id, current_user)
    db.session.commit()
    flash(
        _(
            "Alert %(id)s cleared: a new one opens if the next checked answers are still below the threshold.",
            id=alert.id,
        ),
        "info",
    )
    return redirect(url_for("admin.dataset_tab", dataset_id=dataset_id, tab="people"))


@bp.post("/datasets/<id:dataset_id>/upload")
@admin_required
@shown_on(lambda dataset_id: tab_page(dataset_id, "labeling"))
def upload(dataset_id: int) -> Any:
    """Add items to a dataset from a CSV or JSONL file."""
    checked(CsrfForm())
    ds = datasets.get_dataset(db.session(), dataset_id)
    rows = _items_of_form("upload", keep_columns=ds.keep_columns)
    flash_report(datasets.add_items(db.session(), ds, rows, key=pii_key()))
    db.session.commit()
    return redirect(url_for("admin.dataset_tab", dataset_id=ds.id, tab="labeling"))


@bp.post("/datasets/<id:dataset_id>/delete")
@admin_required
@shown_on(lambda dataset_id: tab_page(dataset_id, "settings"))
def delete(dataset_id: int) -> Any:
    """Delete a dataset here and its tasks in Label Studio (after typing its name)."""
    checked(CsrfForm())
    ds = datasets.get_dataset(db.session(), dataset_id)
    if (request.form.get("confirm_name") or "").strip() != ds.name:
        raise Invalid("Type the exact name of the dataset to delete it.")
    name = ds.name
    removed = delete_dataset(db.session(), ls_client() if ds.ls_project_id is not None else None, ds)
    db.session.commit()
    flash(_("Deleted dataset “%(name)s” and %(n)s Label Studio tasks.", name=name, n=removed), "success")
    return redirect(url_for("admin.dashboard"))


@bp.post("/datasets/<id:dataset_id>/auto-assign")
@admin_required
@shown_on(lambda dataset_id: tab_page(dataset_id, "labeling"))
def auto_assign_view(dataset_id: int) -> Any:
    """Assign the hardest unassigned tasks to an annotator (diverse or strictly by priority)."""
    checked(CsrfForm())
    ds = datasets.get_dataset(db.session(), dataset_id)
    values = AutoAssignRequest.parse(request.form.to_dict(), form=True)
    ids = auto_assign_request(db.session(), ds, values)
    db.session.commit()
    if ids:
        flash(_("Assigned %(n)s tasks to %(who)s, hardest first.", n=len(ids), who=values.username), "success")
    else:
        flash(_("No unassigned, unlabeled tasks left in this dataset."), "info")
    return redirect(url_for("admin.dataset_tab", dataset_id=ds.id, tab="labeling"))
