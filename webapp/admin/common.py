"""Messages the admin areas share."""

from __future__ import annotations

from flask import flash

from include.services.datasets import ItemsReport


def flash_report(report: ItemsReport) -> None:
    flash(report.summary + ".", "success" if report.added else "info")
    if report.duplicate_examples:
        flash("Duplicates skipped, e.g.: " + "; ".join(f"“{t}”" for t in report.duplicate_examples[:3]), "info")
