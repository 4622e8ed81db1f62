"""Admin: de-identification policies, trying one on a text, a dataset's policy, revealing an
original (audited), and the audit log."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from include.db.models import Item, PiiPolicy
from include.pii.entities import ENTITIES, NEEDS_MODEL, OPERATORS
from include.services import pii
from webapp.admin import bp
from webapp.admin.common import dataset_or_404
from webapp.downloads import pii_key, pii_llm
from webapp.extensions import db
from webapp.forms import CsrfForm
from webapp.security import admin_required

ENTITY_HELP = {
    "PHONE": "mainland mobiles and landlines, +country numbers",
    "ID_NUMBER": "18-digit resident IDs with a valid check digit",
    "BANK_CARD": "16-19 digits passing the Luhn check",
    "EMAIL": "email addresses",
    "IP_ADDRESS": "IPv4 and IPv6",
    "URL": "http(s) and www. links",
    "PASSPORT": "passport numbers next to the word passport / 护照",
    "PERSON": "person names (LLM recognizer)",
    "ADDRESS": "street and postal addresses (LLM recognizer)",
}


def _page(status: int = 200, *, tried: dict[str, Any] | None = None, editing: PiiPolicy | None = None) -> Any:
    return (
        render_template(
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
        ),
        status,
    )


@bp.get("/privacy")
@admin_required
def privacy() -> Any:
    """Policies, a place to try one, and who saw original personal data when."""
    editing = db.session.get(PiiPolicy, request.args.get("edit", type=int) or 0)
    return _page(editing=editing)


@bp.post("/privacy/policies")
@admin_required
def save_policy() -> Any:
    """Create a policy, or change one (``policy_id``): its datasets are de-identified again."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    entities = {e: request.form.get(f"op_{e}", "") for e in ENTITIES if request.form.get(f"use_{e}")}
    policy_id = request.form.get("policy_id", type=int)
    try:
        policy = pii.save_policy(
            db.session(),
            request.form.get("name", ""),
            entities,
            locale=request.form.get("locale", "auto"),
            use_llm=bool(request.form.get("use_llm")),
            policy_id=policy_id,
        )
        db.session.commit()
    except pii.PolicyError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _page(400, editing=db.session.get(PiiPolicy, policy_id or 0))
    flash(f"Policy “{policy.name}” saved (version {policy.version}).", "success")
    return redirect(url_for("admin.privacy"))


@bp.post("/privacy/try")
@admin_required
def try_policy() -> Any:
    """De-identify a sample text by a policy, showing what would be replaced (nothing is stored)."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    raw = request.form.get("policy_id", "default")
    try:
        policy_id, texts, options = pii.parse_test_request(
            {"policy_id": raw, "text": [request.form.get("sample", "")], "options": {"format": "json"}}
        )
        policy = pii.get_policy(db.session(), policy_id) if policy_id is not None else None
        result = pii.try_policy(
            db.session(),
            policy_id,
            texts,
            options,
            key=pii_key(),
            with_mapping=True,
            llm_recognizer=pii_llm(bool(policy and policy.use_llm)),
        )
    except pii.PolicyError as exc:
        flash(str(exc), "error")
        return _page(400)
    return _page(tried={"result": result["deidentified"][0], "mapping": result["mapping"][0], "policy": raw})


@bp.post("/datasets/<id:dataset_id>/pii-policy")
@admin_required
def dataset_policy(dataset_id: int) -> Any:
    ds = dataset_or_404(dataset_id)
    if not CsrfForm().validate_on_submit():
        abort(400)
    raw = request.form.get("policy_id", "")
    try:
        pending = pii.attach(db.session(), ds, int(raw) if raw.isdigit() else None)
        db.session.commit()
    except pii.PolicyError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        if ds.pii_policy_id is None:
            flash("No de-identification for this dataset: texts are used as uploaded.", "info")
        else:
            flash(
                f"{pending} items wait for de-identification: import, embedding and LLM calls are blocked until "
                "the De-identify pipeline (or Import, which runs it first) has run.",
                "success",
            )
    return redirect(url_for("admin.dataset", dataset_id=ds.id) + "#privacy")


@bp.post("/items/<bigid:item_id>/reveal")
@admin_required
def reveal(item_id: int) -> Any:
    """Show one item's original text to this admin, and write it in the audit log."""
    if not CsrfForm().validate_on_submit():
        abort(400)
    item = db.session.get(Item, item_id) or abort(404)
    try:
        shown = pii.reveal(db.session(), item_id, current_user, pii.key_of(current_app.config.get("PII_KEY")))
        db.session.commit()
    except pii.PolicyError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(request.referrer or url_for("admin.dataset", dataset_id=item.dataset_id))
    return render_template("admin/reveal.html", shown=shown, item=item)
