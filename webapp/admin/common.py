"""Messages the admin areas share."""

from __future__ import annotations

from flask import flash

from include.services.datasets import ItemsReport


def flash_report(report: ItemsReport) -> None:
    flash(report.summary + ".", "success" if report.added else "info")
    if report.duplicate_lines:
        more = "…" if report.duplicates > len(report.duplicate_lines) else ""
        flash("Duplicates skipped: " + "; ".join(report.duplicate_lines) + more, "info")
