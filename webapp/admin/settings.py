"""Admin: a dataset's settings, every group through one view.

Each group (include.services.dataset_settings) is a declared set of parameters with the service
function that applies it; the settings tab draws one form per group from the declaration, and
this view parses what comes back through the same declaration the API uses.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from include.services import dataset_settings, datasets
from webapp.admin import bp
from webapp.admin.datasets import tab_page
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.security import admin_required


@admin_required
@shown_on(lambda dataset_id, name: tab_page(dataset_id, "settings"))
def save_setting(dataset_id: int, name: str) -> Any:
    """Save one settings group of a dataset from its form."""
    checked(CsrfForm())
    setting = dataset_settings.setting(name)
    dataset = datasets.get_dataset(db.session(), dataset_id)
    values = setting.values.parse(request.form.to_dict(), form=True)
    flash(setting.apply(db.session(), dataset, values), "success")
    db.session.commit()
    return redirect(url_for("admin.dataset_tab", dataset_id=dataset_id, tab="settings", _anchor=name))


bp.add_url_rule(
    "/datasets/<id:dataset_id>/settings/<name>", endpoint="save_setting", view_func=save_setting, methods=["POST"]
)
# The addresses the forms had before the settings tab (bookmarks, scripts).
for _old, _name in (
    ("overlap", "overlap"),
    ("live-loop", "live-loop"),
    ("retune", "retune"),
    ("eval-policy", "eval-policy"),
    ("quality/thresholds", "quality-thresholds"),
):
    bp.add_url_rule(
        f"/datasets/<id:dataset_id>/{_old}",
        endpoint=f"save_setting_{_name}",
        view_func=save_setting,
        methods=["POST"],
        defaults={"name": _name},
    )
