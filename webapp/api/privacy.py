"""API: de-identification policies, a dataset's policy, trying one (seed 003's
``deidentify:test``) and revealing an original (admins only, audited)."""

from __future__ import annotations

from typing import Any

from include.errors import Forbidden
from include.services import datasets, pii, privacy
from include.services.paging import PageQuery, page_of
from webapp.api import ANYONE, PartialBody, api_user, json_body, paged, route
from webapp.clients import pii_key, pii_keys, pii_keys_if_set, pii_llm
from webapp.extensions import db
from webapp.serializers import policy_json

TAG = "privacy"


@route("GET", "/pii/policies", tag=TAG, query=PageQuery, response="Policy", listing="policies")
def pii_policies(query: PageQuery) -> dict[str, Any]:
    """Every de-identification policy, by name."""
    return paged("policies", page_of(pii.list_policies(db.session()), query.page, query.limit), policy_json)


@route("POST", "/pii/policies", tag=TAG, body=pii.PolicyBody, status=201, response="PolicyEnvelope")
def create_pii_policy(body: pii.PolicyBody) -> dict[str, Any]:
    """``{"name": ..., "entities": {"PHONE": "placeholder", ...}, "locale": "auto", "use_llm": false}``."""
    policy = pii.save_policy_body(db.session(), body)
    db.session.commit()
    return {"policy": policy_json(policy)}


@route("PUT", "/pii/policies/<id:policy_id>", tag=TAG, body=pii.PolicyBody, response="PolicyEnvelope", errors=(404,))
def update_pii_policy(policy_id: int, body: pii.PolicyBody) -> dict[str, Any]:
    """Change a policy; its version goes up and its datasets are de-identified again."""
    policy = pii.save_policy_body(db.session(), body, policy_id)
    db.session.commit()
    return {"policy": policy_json(policy)}


@route(
    "PUT", "/datasets/<id:dataset_id>/pii_policy", tag=TAG, body=privacy.DatasetPolicy, partial=True,
    response="DatasetPolicy", errors=(404,),
)  # fmt: skip
def set_pii_policy(dataset_id: int, body: PartialBody[privacy.DatasetPolicy]) -> dict[str, Any]:
    """``{"policy_id": 3}``: from now on the dataset's texts are de-identified before use; or
    ``{"policy_id": null, "no_personal_data_reason": "..."}``: none is needed, and why (on record)."""
    dataset = datasets.get_dataset(db.session(), dataset_id)
    chosen = body.over(privacy.DatasetPolicy.of(dataset))
    pending = privacy.decide(db.session(), dataset, chosen.decision(), api_user(), pii_keys_if_set())
    db.session.commit()
    return {"dataset_id": dataset_id, "policy_id": dataset.pii_policy_id, "pending": pending,
            "privacy": privacy.describe(db.session(), dataset)}  # fmt: skip


@route(
    "POST", "/deidentify:test", tag=TAG, roles=ANYONE, body_schema=pii.TRY_REQUEST_SCHEMA, response="Deidentified",
    errors=(403, 404, 429, 503),
)  # fmt: skip
def deidentify_test() -> dict[str, Any]:
    """Seed 003's contract: ``{policy_id, text: [...], options: {locale, format, return_mapping, seed}}``.

    Answers ``{deidentified: [...], policy_version, mapping}``; the mapping only for admins who ask.
    Not an oracle: a non-admin's hashes and ciphertexts use a fresh key per request, so they
    match nothing stored; tries are budgeted per user (429 with Retry-After), LLM texts apart.
    """
    answer = pii.try_request(db.session(), json_body(), user=api_user(), key=pii_key(), llm=pii_llm())
    db.session.commit()  # the try's count against the caller's budget
    return answer


@route("POST", "/items/<bigid:item_id>/reveal", tag=TAG, roles=ANYONE, response="Revealed", errors=(403, 404, 503))
def reveal_item(item_id: int) -> dict[str, Any]:
    """An item's original text (admins only; every reveal is audited)."""
    user = api_user()
    if not user.is_admin:
        raise Forbidden("only admins can see original personal data")
    shown = pii.reveal(db.session(), item_id, user, pii_keys())
    db.session.commit()
    return shown
