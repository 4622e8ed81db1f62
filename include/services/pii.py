"""De-identification policies, the deidentify step's bookkeeping, and revealing originals.

A dataset with a policy keeps its items' texts de-identified in place (``items.text``); the
originals live only in ``pii_mappings``, encrypted with PII_KEY. Until the deidentify step has
run over every item, the dataset cannot be imported into Label Studio, embedded or sent to an
LLM (:func:`require_deidentified` says so). Only admins reveal an original, and each reveal is
written to ``pii_reveals``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from include.db.models import Dataset, Item, PiiMapping, PiiPolicy, PiiReveal, Task, User
from include.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from include.params import ParamSpec, Values, param
from include.pii.entities import ENTITIES, NEEDS_MODEL, OPERATORS, STRUCTURED
from include.pii.mapping import Keys, MappingError, restore
from include.pii.mapping import decrypt as _decrypt
from include.pii.mapping import encrypt as _encrypt
from include.services import rate_limit

if TYPE_CHECKING:  # the engine loads Presidio and spaCy: only where texts are de-identified
    from include.pii.engine import Deidentified

LOCALES = ("auto", "zh", "en")


class PolicyError(Invalid):
    """A policy that cannot be saved or used; the message says why."""


class PolicyNotFound(PolicyError, NotFound):
    """The policy id names no policy."""


class MappingNotFound(PolicyError, NotFound):
    """The item has no de-identification mapping (it was never de-identified)."""


class KeyUnavailable(PolicyError, Unavailable):
    """PII_KEY is missing or malformed: the server cannot encrypt or open mappings."""


class DeidentificationRequired(Conflict, RuntimeError):
    """The dataset's policy requires de-identification that has not run over every item yet."""


class PrivacyUndecided(DeidentificationRequired):
    """The dataset has no privacy decision yet (no policy, no reason why none is needed): it is
    held back wherever a pending de-identification would hold it back."""


def keys_of(raw: str | None, previous: Sequence[str] = ()) -> tuple[bytes, ...]:
    """PII_KEY, then the keys it replaced: what opens a mapping while a rotation is under way.

    Raises:
        KeyUnavailable: PII_KEY is not set or not a Fernet key.
    """
    return (key_of(raw), *(key_of(k) for k in previous))


def key_of(raw: str | None) -> bytes:
    """The Fernet key from PII_KEY, or a clear error."""
    if not raw:
        raise KeyUnavailable(
            "PII_KEY is not set: de-identification stores its mappings encrypted and needs a key "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
        )
    from cryptography.fernet import Fernet

    try:
        Fernet(raw.encode())
    except (ValueError, TypeError):
        raise KeyUnavailable("PII_KEY is not a Fernet key (32 url-safe base64-encoded bytes)") from None
    return raw.encode()


def validate_policy(entities: Any, locale: str, use_llm: bool) -> dict[str, str]:
    if not isinstance(entities, dict) or not entities:
        raise PolicyError('a policy names at least one entity and its operator, e.g. {"PHONE": "placeholder"}')
    cleaned: dict[str, str] = {}
    for entity, operator in entities.items():
        if entity not in ENTITIES:
            raise PolicyError(f"unknown entity {entity!r}; one of {', '.join(ENTITIES)}")
        if operator not in OPERATORS:
            raise PolicyError(f"unknown operator {operator!r} for {entity}; one of {', '.join(OPERATORS)}")
        if entity in NEEDS_MODEL and not use_llm and locale == "en":
            raise PolicyError(
                f"{entity} in English text needs the LLM recognizer (Chinese names and addresses are found "
                "offline): turn it on"
            )
        cleaned[str(entity)] = str(operator)
    if locale not in LOCALES:
        raise PolicyError(f"locale must be one of {', '.join(LOCALES)}")
    return cleaned


def save_policy(
    session: Session,
    name: str,
    entities: Any,
    *,
    locale: str = "auto",
    use_llm: bool = False,
    policy_id: int | None = None,
) -> PiiPolicy:
    """Create a policy, or change one (its version goes up, so datasets de-identify again)."""
    cleaned = validate_policy(entities, locale, use_llm)
    name = (name or "").strip()
    if not 2 <= len(name) <= 128:
        raise PolicyError("a policy needs a name of 2-128 characters")
    if policy_id is None:
        if session.scalar(select(PiiPolicy.id).where(func.lower(PiiPolicy.name) == name.lower())) is not None:
            raise PolicyError(f"a policy named {name!r} already exists")
        policy = PiiPolicy(name=name, entities=cleaned, locale=locale, use_llm=use_llm)
        session.add(policy)
    else:
        policy = get_policy(session, policy_id)
        if (policy.entities, policy.locale, policy.use_llm) != (cleaned, locale, use_llm):
            policy.version += 1
            session.execute(
                update(Item)
                .where(Item.dataset_id.in_(select(Dataset.id).where(Dataset.pii_policy_id == policy.id)))
                .values(pii_status="pending")
            )
            scrub_text_copies(
                session, list(session.scalars(select(Dataset.id).where(Dataset.pii_policy_id == policy.id)))
            )
        policy.name, policy.entities, policy.locale, policy.use_llm = name, cleaned, locale, use_llm
        policy.updated_at = datetime.now(UTC)
    session.flush()
    return policy


def get_policy(session: Session, policy_id: int) -> PiiPolicy:
    policy = session.get(PiiPolicy, policy_id)
    if policy is None:
        raise PolicyNotFound(f"no de-identification policy {policy_id}")
    return policy


def list_policies(session: Session) -> list[PiiPolicy]:
    return list(session.scalars(select(PiiPolicy).order_by(PiiPolicy.name)))


POLICY_NAME = ParamSpec("name", "Name", "str", max_length=128)
POLICY_ENTITIES = ParamSpec(
    "entities", "Entities", "mapping", help='entity -> operator, e.g. {"PHONE": "placeholder"}', max_length=32
)
POLICY_LOCALE = ParamSpec("locale", "Locale", "choice", "auto", choices=LOCALES)
POLICY_USE_LLM = ParamSpec(
    "use_llm", "Use the LLM recognizer", "bool", False, help="names and addresses (needs an LLM configured)"
)


@dataclass(frozen=True, kw_only=True)
class PolicyBody(Values):
    """A de-identification policy: which entities, replaced how."""

    name: str = param(POLICY_NAME)
    entities: dict[str, str] = param(POLICY_ENTITIES)
    locale: str = param(POLICY_LOCALE)
    use_llm: bool = param(POLICY_USE_LLM)


def save_policy_body(session: Session, body: PolicyBody, policy_id: int | None = None) -> PiiPolicy:
    """:func:`save_policy` from its declared body."""
    return save_policy(session, body.name, body.entities, locale=body.locale, use_llm=body.use_llm, policy_id=policy_id)


def attach(session: Session, dataset: Dataset, policy_id: int | None, keys: Keys | None = None) -> int:
    """Give a dataset a policy (or none); returns how many items now wait for de-identification.

    With a policy, plaintext originals are sealed (PII_KEY) until de-identified; with none (a
    decision that the texts hold no personal data), seals are opened again.

    Raises:
        PolicyError: ``policy_id`` names no policy (a bad reference in the request: 400, not 404).
        KeyUnavailable: there are originals to seal or open and no PII_KEY.
    """
    from include.services import sealing

    if policy_id is not None and session.get(PiiPolicy, policy_id) is None:
        raise PolicyError(f"no de-identification policy {policy_id}")
    if policy_id is not None:
        key = (keys if isinstance(keys, bytes) else keys[0]) if keys else None
        sealing.seal_dataset(session, dataset.id, dataset.keep_columns or (), key)
    else:
        sealing.open_dataset(session, dataset.id, keys)
    dataset.pii_policy_id = policy_id
    status = "pending" if policy_id is not None else "none"
    where = [Item.dataset_id == dataset.id]
    if policy_id is None:
        where.append(Item.pii_status == "pending")  # already de-identified texts stay so
    result = session.execute(update(Item).where(*where).values(pii_status=status))
    if policy_id is not None:
        scrub_text_copies(session, [dataset.id])
    session.flush()
    return int(getattr(result, "rowcount", 0) or 0) if policy_id is not None else 0


def _emptied(value: Any, key: str) -> Any:
    """``value`` (JSON) with every ``key`` emptied, however deep."""
    if isinstance(value, dict):
        return {k: ([] if k == key else _emptied(v, key)) for k, v in value.items()}
    if isinstance(value, list):
        return [_emptied(v, key) for v in value]
    return value


def scrub_text_copies(session: Session, dataset_ids: Sequence[int]) -> None:
    """Remove the texts that reports quote (quality-check examples, an evaluation's worst
    mistakes): they were written under the old policy, or none, and would keep what the new
    one replaces. The figures stay; the next report quotes the de-identified texts."""
    from include.db.models import ModelEvaluation, ModelVersion, QualityReport

    if not dataset_ids:
        return
    for report in session.scalars(select(QualityReport).where(QualityReport.dataset_id.in_(dataset_ids))):
        scrubbed = _emptied(report.checks, "examples")
        if scrubbed != report.checks:
            report.checks = scrubbed
    models = select(ModelVersion.id).where(ModelVersion.dataset_id.in_(dataset_ids))
    for evaluation in session.scalars(select(ModelEvaluation).where(ModelEvaluation.model_id.in_(models))):
        if (evaluation.report or {}).get("mistakes"):
            evaluation.report = {**evaluation.report, "mistakes": [], "mistakes_removed": "a policy changed"}


def pending_count(session: Session, dataset_id: int) -> int:
    return int(
        session.scalar(select(func.count(Item.id)).where(Item.dataset_id == dataset_id, Item.pii_status == "pending"))
        or 0
    )


def require_decided(dataset: Dataset, action: str) -> None:
    """Refuse ``action`` on a dataset that has no privacy decision (include.services.privacy).

    Raises:
        PrivacyUndecided: naming the dataset and where to decide.
    """
    if dataset.pii_policy_id is None and dataset.pii_exempt_reason is None:
        raise PrivacyUndecided(
            f"dataset {dataset.name!r} has no privacy decision, so nothing may read its texts ({action}): "
            "attach a de-identification policy, or record why it holds no personal data "
            "(the dataset's Quality and privacy tab, or PUT /api/v1/datasets/<id>/pii_policy)"
        )


def require_deidentified(session: Session, dataset: Dataset, action: str) -> None:
    """Refuse ``action`` (import, embedding, sending to an LLM) while texts wait for de-identification.

    Raises:
        PrivacyUndecided: the dataset has no privacy decision (include.services.privacy).
        DeidentificationRequired: naming the dataset, how many items wait, and what to run.
    """
    require_decided(dataset, action)
    if dataset.pii_policy_id is None:
        return
    waiting = pending_count(session, dataset.id)
    if waiting:
        raise DeidentificationRequired(
            f"dataset {dataset.name!r} requires de-identification before {action}: {waiting} items have not "
            "been de-identified yet; run the deidentify pipeline first"
        )


@dataclass(frozen=True)
class PendingItem:
    id: int
    text: str
    mapping: bytes | None
    source: dict[str, Any]
    sealed: bytes | None = None


def pending_items(session: Session, dataset_id: int, *, after_id: int, limit: int) -> list[PendingItem]:
    rows = session.execute(
        select(Item.id, Item.text, PiiMapping.mapping, Item.source, Item.sealed)
        .outerjoin(PiiMapping, PiiMapping.item_id == Item.id)
        .where(Item.dataset_id == dataset_id, Item.pii_status == "pending", Item.id > after_id)
        .order_by(Item.id)
        .limit(limit)
    ).tuples()
    return [PendingItem(int(i), str(t), m, dict(src or {}), sealed) for i, t, m, src, sealed in rows]


def original_of(item: PendingItem, key: Keys) -> tuple[str, dict[str, Any]]:
    """The original text and source of an item: its seal opened (never de-identified yet), or
    its text restored from the mapping (an earlier policy version de-identified it already)."""
    if item.sealed is not None:
        from include.services.sealing import unseal

        opened = unseal(item.sealed, key)
        return opened.text, {**item.source, **opened.kept}
    if item.mapping is None:
        return item.text, item.source
    return restore(item.text, decrypt(item.mapping, key)), item.source


def encrypt(replacements: list[dict[str, Any]], key: bytes) -> bytes:
    return _encrypt(replacements, key)


def decrypt(mapping: bytes, key: Keys) -> list[dict[str, Any]]:
    try:
        return _decrypt(mapping, key)
    except MappingError as exc:
        raise KeyUnavailable(str(exc)) from None


def store(
    session: Session,
    item_id: int,
    result: Deidentified,
    policy: PiiPolicy,
    key: bytes,
    source: dict[str, Any] | None = None,
) -> None:
    """Replace the item's text by its de-identified form and keep the mapping, encrypted.

    Raises:
        PolicyError: the result was held (it holds the original text): see :func:`hold`.
    """
    if result.held is not None:
        raise PolicyError(f"item {item_id} was held, not de-identified: {result.held}")
    replacements = [r.__dict__ for r in result.replacements]
    values: dict[str, Any] = {"text": result.text, "pii_status": "done", "pii_note": None, "sealed": None}
    if source is not None:
        values["source"] = source  # its kept columns, de-identified too (their originals are not kept)
    session.execute(update(Item).where(Item.id == item_id).values(**values))
    # Label Studio holds the text it was imported with: the next import rewrites it.
    session.execute(update(Task).where(Task.item_id == item_id).values(ls_data_stale=True))
    stmt = insert(PiiMapping).values(
        item_id=item_id,
        policy_id=policy.id,
        policy_version=policy.version,
        replacements=len(replacements),
        mapping=encrypt(replacements, key),
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["item_id"],
            set_={
                "policy_id": stmt.excluded.policy_id,
                "policy_version": stmt.excluded.policy_version,
                "replacements": stmt.excluded.replacements,
                "mapping": stmt.excluded.mapping,
                "created_at": func.now(),
            },
        )
    )


def hold(session: Session, item_id: int, reason: str) -> None:
    """Keep an item pending, with why it could not be de-identified (shown to admins; the next
    run tries again). It stays out of import, embedding and the LLM paths meanwhile."""
    session.execute(update(Item).where(Item.id == item_id).values(pii_status="pending", pii_note=reason[:500]))


def held_items(session: Session, dataset_id: int, limit: int = 5) -> list[tuple[int, str]]:
    """Items the last runs held, with the reason (for the dataset's page)."""
    rows = session.execute(
        select(Item.id, Item.pii_note)
        .where(Item.dataset_id == dataset_id, Item.pii_status == "pending", Item.pii_note.is_not(None))
        .order_by(Item.id)
        .limit(limit)
    ).tuples()
    return [(int(i), str(n)) for i, n in rows]


def reveal(session: Session, item_id: int, user: User, key: Keys) -> dict[str, Any]:
    """An item's original text and its replacements, for an admin; the reveal is audited.

    Raises:
        PermissionError: the user is not an admin (nothing is revealed, nothing is written).
        PolicyError: the item has no mapping, or the key does not open it.
    """
    if not user.is_admin:
        raise Forbidden("only admins can see original personal data")
    item = session.get(Item, item_id)
    mapping = session.get(PiiMapping, item_id)
    if item is None or mapping is None:
        raise MappingNotFound(f"item {item_id} has no de-identification mapping")
    replacements = decrypt(mapping.mapping, key)
    dataset = session.get_one(Dataset, item.dataset_id)
    session.add(
        PiiReveal(
            user_id=user.id,
            username=user.username,
            dataset_id=dataset.id,
            dataset_name=dataset.name,
            item_id=item_id,
            what="item",
        )
    )
    session.flush()
    return {
        "item_id": item_id,
        "text": item.text,
        "original": restore(item.text, replacements),
        "mapping": replacements,
    }


def record_export_reveal(session: Session, user: User, dataset_id: int) -> None:
    dataset = session.get_one(Dataset, dataset_id)
    session.add(
        PiiReveal(
            user_id=user.id, username=user.username, dataset_id=dataset_id, dataset_name=dataset.name, what="export"
        )
    )


def reveals(session: Session, dataset_id: int | None = None, limit: int = 50) -> list[tuple[PiiReveal, str | None]]:
    """The audit log, newest first: each reveal with the username of who saw it (as it was then)."""
    stmt = select(PiiReveal, PiiReveal.username).order_by(PiiReveal.created_at.desc(), PiiReveal.id.desc()).limit(limit)
    if dataset_id is not None:
        stmt = stmt.where(PiiReveal.dataset_id == dataset_id)
    return [(r, name) for r, name in session.execute(stmt).tuples()]


# -- trying a policy on texts (seed 003's POST /api/v1/deidentify:test) ------------------------
DEFAULT_POLICY = {entity: "placeholder" for entity in STRUCTURED}
MAX_TEST_TEXTS = 100
MAX_TEST_CHARS = 20_000
_LOCALES = {"auto": "auto", "zh": "zh", "zh-cn": "zh", "zh-hans": "zh", "zh-tw": "zh", "en": "en", "en-us": "en",
            "en-gb": "en"}  # fmt: skip
FORMATS = ("text", "json")


@dataclass(frozen=True)
class TryOptions:
    locale: str = "auto"
    format: str = "text"
    return_mapping: bool = False
    seed: int | None = None


def parse_test_request(body: dict[str, Any]) -> tuple[int | None, list[str], TryOptions]:
    """(policy id or None for the default, texts, options) from the request body.

    Raises:
        PolicyError: a malformed request; the message names the field.
    """
    raw_policy = body.get("policy_id")
    policy_id: int | None
    if raw_policy is None or raw_policy == "default":
        policy_id = None
    elif isinstance(raw_policy, int) and not isinstance(raw_policy, bool) and raw_policy > 0:
        policy_id = raw_policy
    elif isinstance(raw_policy, str) and raw_policy.isdigit():
        policy_id = int(raw_policy)
    else:
        raise PolicyError('policy_id must be a policy id, or "default"')
    texts = body.get("text")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise PolicyError('text must be a list of strings, e.g. {"text": ["call 13800138000"]}')
    if len(texts) > MAX_TEST_TEXTS:
        raise PolicyError(f"at most {MAX_TEST_TEXTS} texts per request")
    if any(len(t) > MAX_TEST_CHARS for t in texts):
        raise PolicyError(f"a text may have at most {MAX_TEST_CHARS} characters")
    raw = body.get("options") or {}
    if not isinstance(raw, dict):
        raise PolicyError("options must be an object")
    unknown = sorted(set(raw) - {"locale", "format", "return_mapping", "seed"})
    if unknown:
        raise PolicyError(f"unknown option {unknown[0]!r}")
    locale = _LOCALES.get(str(raw.get("locale") or "auto").lower())
    if locale is None:
        raise PolicyError("options.locale must be zh-CN, en-US, zh, en or auto")
    fmt = raw.get("format") or "text"
    if fmt not in FORMATS:
        raise PolicyError(f"options.format must be one of {', '.join(FORMATS)}")
    return_mapping = raw.get("return_mapping", False)
    if not isinstance(return_mapping, bool):
        raise PolicyError("options.return_mapping must be true or false")
    seed = raw.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise PolicyError("options.seed must be a whole number or null")
    return policy_id, list(texts), TryOptions(locale, fmt, return_mapping, seed)


TRY_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {
        "policy_id": {"anyOf": [{"type": "integer", "minimum": 1}, {"enum": ["default", None]}],
                      "description": "a policy id, or \"default\" (the built-in policy)"},
        "text": {"anyOf": [{"type": "string", "maxLength": MAX_TEST_CHARS},
                           {"type": "array", "minItems": 1, "maxItems": MAX_TEST_TEXTS,
                            "items": {"type": "string", "maxLength": MAX_TEST_CHARS}}]},
        "options": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "locale": {"type": "string", "description": "zh-CN, en-US, zh, en or auto"},
                "format": {"enum": list(FORMATS)},
                "return_mapping": {"type": "boolean", "description": "admins only"},
                "seed": {"type": ["integer", "null"], "description": "salts the hash operator"},
            },
        },
    },
}  # fmt: skip
"""The body :func:`parse_test_request` reads (seed 003's contract), for the API's description;
a test checks the two agree. Hand-written: its fields take aliases no ParamSpec has."""


# Trying a policy is no oracle: non-admins never hash or encrypt with the platform's key (a
# fresh key and salt per request, so their pseudonyms match nothing stored), and everyone's
# tries are budgeted, the LLM recognizer's texts separately (it costs money or GPU time).
TRY_BUDGETS = {
    False: rate_limit.Budget("pii-try", 30, timedelta(minutes=1)),
    True: rate_limit.Budget("pii-try-admin", 120, timedelta(minutes=1)),
}
LLM_TRY_BUDGETS = {
    False: rate_limit.Budget("pii-try-llm", 200, timedelta(days=1), "texts through the LLM recognizer"),
    True: rate_limit.Budget("pii-try-llm-admin", 2000, timedelta(days=1), "texts through the LLM recognizer"),
}


def try_request(
    session: Session,
    body: dict[str, Any],
    *,
    user: User,
    key: bytes | None,
    llm: Callable[[], Any],
) -> dict[str, Any]:
    """Seed 003's ``deidentify:test``: parse the body, check who may see the mapping, spend the
    caller's budget, try it. The caller commits (the budget's count).

    ``llm`` builds the LLM recognizer, asked only when the policy uses it.

    Raises:
        PolicyError: a malformed body, an unknown policy (404), a missing key (503).
        Forbidden: the mapping was asked for by someone who is not an admin.
        RateLimited: the caller's budget of tries (or of LLM texts) is spent.
    """
    policy_id, texts, options = parse_test_request(body)
    if options.return_mapping and not user.is_admin:
        raise Forbidden("only admins may see the mapping to original personal data")
    policy = get_policy(session, policy_id) if policy_id is not None else None
    rate_limit.spend(session, TRY_BUDGETS[user.is_admin], f"user:{user.id}")
    uses_llm = policy is not None and policy.use_llm
    if uses_llm:
        rate_limit.spend(session, LLM_TRY_BUDGETS[user.is_admin], f"user:{user.id}", len(texts))
    salt = "" if options.seed is None else str(options.seed)
    if not user.is_admin:
        from cryptography.fernet import Fernet

        key, salt = Fernet.generate_key(), secrets.token_hex(16) + salt
    return try_policy(
        session,
        policy_id,
        texts,
        options,
        key=key,
        salt=salt,
        with_mapping=options.return_mapping,
        llm_recognizer=llm() if uses_llm else None,
    )


def try_policy(
    session: Session,
    policy_id: int | None,
    texts: list[str],
    options: TryOptions,
    *,
    key: bytes | None,
    with_mapping: bool,
    salt: str | None = None,
    llm_recognizer: Any = None,
) -> dict[str, Any]:
    """De-identify ``texts`` by a policy (or the default one) without storing anything.

    ``salt`` (by default the options' ``seed``) salts the hash operator, so hashed values can be
    made to differ between uses.
    The mapping (original -> replacement per text) is returned only when ``with_mapping``.

    Raises:
        PolicyError: an unknown policy, or one that needs PII_KEY or the LLM recognizer.
    """
    if policy_id is None:
        entities, version, locale, name = DEFAULT_POLICY, "default-1", "auto", "default"
    else:
        policy = get_policy(session, policy_id)
        entities, version, locale, name = policy.entities, f"{policy.id}.{policy.version}", policy.locale, policy.name
        if policy.use_llm and llm_recognizer is None:
            raise PolicyError(f"policy {policy.name!r} uses the LLM recognizer, which is not configured")
    from include.pii.engine import PiiError, deidentify

    try:
        results = deidentify(
            texts,
            entities,
            key=key,
            locale=options.locale if options.locale != "auto" else locale,
            salt=salt if salt is not None else ("" if options.seed is None else str(options.seed)),
            llm_recognizer=llm_recognizer,
        )
    except PiiError as exc:
        raise PolicyError(str(exc)) from None
    held = [(i, r.held) for i, r in enumerate(results) if r.held is not None]
    if held:
        i, reason = held[0]
        raise PolicyError(f"text {i + 1} could not be de-identified: {reason}")
    if options.format == "json":
        shown: list[Any] = [
            {
                "text": r.text,
                "entities": [
                    {"type": x.entity, "start": x.start, "end": x.end, "replacement": x.replacement}
                    for x in r.replacements
                ],
            }
            for r in results
        ]
    else:
        shown = [r.text for r in results]
    out: dict[str, Any] = {"deidentified": shown, "policy_version": version, "policy": name}
    if with_mapping:
        out["mapping"] = [{x.original: x.replacement for x in r.replacements} for r in results]
    return out


# -- hashes of what is stored ------------------------------------------------------------------
def rehash(session: Session, dataset_id: int, stored: Sequence[tuple[int, str]]) -> int:
    """Key de-identified items by their new text: ``items.text_hash`` becomes the hash of the
    text as stored, the copies that held the old hash (eval membership, snapshots, experiments'
    items, inference results) follow it, and vectors of the old text that no item uses any more
    are deleted. Returns how many hashes changed.

    Why: the hash of an original (a phone number) can be confirmed by brute force with no key
    and no audit, and vectors keyed by it were reused after de-identification (and never found
    for the de-identified text Label Studio sends the ML backend). An unkeyed hash of the stored
    text reveals nothing the stored text does not; two originals that de-identify to the same
    text keep apart (the later one's hash is salted with its id), so no item is lost.
    """
    from include.services.datasets import text_hash as _sha256  # the dedup key's own function (no import cycle)

    if not stored:
        return 0
    ids = [item_id for item_id, _ in stored]
    old = dict(session.execute(select(Item.id, Item.text_hash).where(Item.id.in_(ids))).tuples().all())
    candidates = [_sha256(text) for _, text in stored]
    taken = set(
        session.scalars(
            select(Item.text_hash).where(
                Item.dataset_id == dataset_id, Item.text_hash.in_(candidates), Item.id.not_in(ids)
            )
        )
    )
    taken |= set(old.values())  # another item of the batch may still hold it
    changes: list[tuple[int, str, str]] = []
    for item_id, text in stored:
        new = _sha256(text)
        if new == old.get(item_id):
            continue
        if new in taken:
            new = _sha256(f"{text}\x00item:{item_id}")
        taken.add(new)
        changes.append((item_id, old[item_id], new))
    move_hashes(session, dataset_id, changes)
    return len(changes)


def move_hashes(session: Session, dataset_id: int, changes: Sequence[tuple[int, str, str]]) -> None:
    """Give items (id, old hash, new hash) their new hashes, and the copies that hold the old
    ones with them; vectors of an old hash no item has any more are deleted."""
    if not changes:
        return
    params = {
        "ids": [c[0] for c in changes],
        "olds": [c[1] for c in changes],
        "news": [c[2] for c in changes],
        "dataset_id": dataset_id,
    }
    for statement in _REHASH:
        session.execute(sql_text(statement), params)


_MAP = "unnest(CAST(:ids AS bigint[]), CAST(:olds AS varchar[]), CAST(:news AS varchar[])) AS m(id, old, new)"
_REHASH = (
    f"UPDATE items i SET text_hash = m.new FROM {_MAP} WHERE i.id = m.id",
    f"UPDATE eval_items e SET text_hash = m.new FROM {_MAP} WHERE e.dataset_id = :dataset_id AND e.text_hash = m.old",
    f"UPDATE snapshot_items s SET text_hash = m.new FROM {_MAP}, snapshots p "
    "WHERE s.snapshot_id = p.id AND p.dataset_id = :dataset_id AND s.text_hash = m.old",
    f"UPDATE experiment_items x SET text_hash = m.new FROM {_MAP}, experiments p "
    "WHERE x.experiment_id = p.id AND p.dataset_id = :dataset_id AND x.text_hash = m.old",
    f"UPDATE inference_results r SET text_hash = m.new FROM {_MAP}, inference_runs p "
    "WHERE r.run_id = p.id AND p.dataset_id = :dataset_id AND r.row = m.id",
    # Vectors of the old texts that no item anywhere still has: gone with the original.
    "DELETE FROM embeddings e USING unnest(CAST(:olds AS varchar[])) AS o(h) "
    "WHERE e.text_hash = o.h AND NOT EXISTS (SELECT 1 FROM items i WHERE i.text_hash = o.h)",
)
