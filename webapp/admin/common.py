"""Lookups and messages the admin areas share."""

from __future__ import annotations

from flask import abort, flash

from include.db.models import Dataset
from include.services.datasets import ItemsReport
from include.services.users import annotators
from webapp.extensions import db


def dataset_or_404(dataset_id: int) -> Dataset:
    dataset = db.session.get(Dataset, dataset_id)
    if dataset is None:
        abort(404)
    return dataset


def annotator_choices() -> list[tuple[str, str]]:
    return [(u.username, u.username) for u in annotators(db.session())]


def flash_report(report: ItemsReport) -> None:
    flash(report.summary + ".", "success" if report.added else "info")
    if report.duplicate_examples:
        flash("Duplicates skipped, e.g.: " + "; ".join(f"“{t}”" for t in report.duplicate_examples[:3]), "info")
