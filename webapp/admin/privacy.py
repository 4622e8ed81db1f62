"""Admin: de-identification policies, trying one on a text, a dataset's policy, revealing an
original (audited), and the audit log."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from include.db.models import Item, PiiPolicy
from include.pii.entities import ENTITIES, NEEDS_MODEL, OPERATORS
from include.services import datasets, pii
from include.services import privacy as privacy_decision
from webapp.admin import bp
from webapp.admin.datasets import tab_page
from webapp.clients import pii_key, pii_keys, pii_keys_if_set, pii_llm
from webapp.errors import shown_on
from webapp.extensions import db
from webapp.forms import CsrfForm, checked
from webapp.security import admin_required

ENTITY_HELP = {
    "PHONE": "mainland mobiles and landlines, +country numbers",
    "ID_NUMBER": "18-digit resident IDs with a valid check digit",
    "BANK_CARD": "16-19 digits passing the Luhn check",
    "EMAIL": "email addresses",
    "IP_ADDRESS": "IPv4 and IPv6",
    "URL": "http(s) and www. links",
    "PASSPORT": "passport numbers next to the word passport / 护照",
    "PERSON": "person names (Chinese offline; others with the LLM recognizer)",
    "ADDRESS": "street and postal addresses (Chinese offline; others with the LLM recognizer)",
}


def privacy_view(*, tried: dict[str, Any] | None = None, editing: PiiPolicy | None = None) -> Any:
    return render_template(
        "admin/privacy.html",
        policies=pii.list_policies(db.session()),
        reveals=pii.reveals(db.session(), limit=30),
        entities=ENTITIES,
        needs_model=NEEDS_MODEL,
        entity_help=ENTITY_HELP,
        operators=OPERATORS,
        locales=pii.LOCALES,
        csrf_form=CsrfForm(),
        key_set=bool(current_app.config.get("PII_KEY")),
        llm_set=bool(current_app.config.get("PII_LLM")),
        tried=tried,
        editing=editing,
        sample=request.form.get("sample", ""),
    )


def _editing_again() -> Any:
    """The page again after a refused policy, with the policy being edited still open."""
    return privacy_view(editing=db.session.get(PiiPolicy, request.form.get("policy_id", type=int) or 0))


@bp.get("/privacy")
@admin_required
def privacy() -> Any:
    """Policies, a place to try one, and who saw original personal data when."""
    return privacy_view(editing=db.session.get(PiiPolicy, request.args.get("edit", type=int) or 0))


@bp.post("/privacy/policies")
@admin_required
@shown_on(_editing_again)
def save_policy() -> Any:
    """Create a policy, or change one (``policy_id``): its datasets are de-identified again."""
    checked(CsrfForm())
    form = request.form
    body = pii.PolicyBody.parse(
        {
            "name": form.get("name", ""),
            "entities": {e: form.get(f"op_{e}", "") for e in ENTITIES if form.get(f"use_{e}")} or None,
            "locale": form.get("locale", "auto"),
            "use_llm": bool(form.get("use_llm")),
        }
    )
    policy = pii.save_policy_body(db.session(), body, form.get("policy_id", type=int))
    db.session.commit()
    flash(_("Policy “%(name)s” saved (version %(v)s).", name=policy.name, v=policy.version), "success")
    return redirect(url_for("admin.privacy"))


@bp.post("/privacy/try")
@admin_required
@shown_on(privacy_view)
def try_policy() -> Any:
    """De-identify a sample text by a policy, showing what would be replaced (nothing is stored)."""
    checked(CsrfForm())
    raw = request.form.get("policy_id", "default")
    body = {"policy_id": raw, "text": [request.form.get("sample", "")], "options": {"format": "json",
            "return_mapping": True}}  # fmt: skip
    result = pii.try_request(db.session(), body, user=current_user, key=pii_key(), llm=pii_llm())
    db.session.commit()  # the try's count against the admin's budget
    return privacy_view(tried={"result": result["deidentified"][0], "mapping": result["mapping"][0], "policy": raw})


@bp.post("/datasets/<id:dataset_id>/pii-policy")
@admin_required
@shown_on(lambda dataset_id: tab_page(dataset_id, "quality-privacy"))
def dataset_policy(dataset_id: int) -> Any:
    """Choose which policy de-identifies the dataset's texts, or record why none is needed."""
    checked(CsrfForm())
    ds = datasets.get_dataset(db.session(), dataset_id)
    chosen = privacy_decision.DatasetPolicy.parse(request.form.to_dict(), form=True)
    pending = privacy_decision.decide(db.session(), ds, chosen.decision(), current_user, pii_keys_if_set())
    db.session.commit()
    if ds.pii_policy_id is None:
        flash(_("No de-identification for this dataset: texts are used as uploaded. Your reason is on record."), "info")
    else:
        said = _(
            "%(n)s items wait for de-identification: import, embedding and LLM calls are blocked until the "
            "De-identify pipeline (or Import, which runs it first) has run.",
            n=pending,
        )
        flash(said, "success")
    return redirect(url_for("admin.dataset_tab", dataset_id=ds.id, tab="quality-privacy", _anchor="privacy"))


def _item_dataset_tab(item_id: int) -> Any:
    item = db.session.get(Item, item_id) or abort(404)
    return tab_page(item.dataset_id, "quality-privacy")


@bp.post("/items/<bigid:item_id>/reveal")
@admin_required
@shown_on(_item_dataset_tab)
def reveal(item_id: int) -> Any:
    """Show one item's original text to this admin, and write it in the audit log."""
    checked(CsrfForm())
    item = db.session.get(Item, item_id) or abort(404)
    shown = pii.reveal(db.session(), item_id, current_user, pii_keys())
    db.session.commit()
    return render_template("admin/reveal.html", shown=shown, item=item)
