"""Every dataset has a privacy decision before any pipeline reads its texts.

The decision is one of: a de-identification policy (by default the platform's, which replaces
the structured personal data), or a reason on record why the dataset holds no personal data.
A new dataset gets the platform default unless its creator picks another policy or records the
reason; who decided and when stand beside it. A dataset without a decision (one from before
this rule) is left alone by import, embedding, quality reports and the LLM paths until an
admin decides (``pii.require_deidentified`` refuses with :class:`pii.PrivacyUndecided`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Dataset, PiiPolicy, User
from include.errors import Invalid
from include.params import ParamSpec, Values, param
from include.pii.entities import STRUCTURED
from include.services import pii

DEFAULT_NAME = "Platform default"
REASON_MIN = 10

POLICY_CHOICE = ParamSpec(
    "pii_policy_id", "De-identification policy", "int", None, nullable=True, minimum=1, maximum=2**31 - 1,
    empty="the platform default", help="empty: the platform default (structured personal data replaced)",
)  # fmt: skip
NO_PERSONAL_DATA = ParamSpec(
    "no_personal_data", "It holds no personal data", "bool", False,
    help="instead of a policy: the texts are used as uploaded; give the reason",
)  # fmt: skip
EXEMPT_REASON = ParamSpec(
    "no_personal_data_reason", "Why it holds no personal data", "text", "", max_length=500,
    help=f"on record with your name, at least {REASON_MIN} characters",
)  # fmt: skip


@dataclass(frozen=True)
class Decision:
    """A policy (``None`` with no reason: the platform default) or the reason there is none."""

    policy_id: int | None = None
    no_personal_data: str | None = None

    @classmethod
    def none_needed(cls, reason: str) -> Decision:
        return cls(None, reason)


PLATFORM_DEFAULT = Decision()


@dataclass(frozen=True, kw_only=True)
class PrivacyChoice(Values):
    """How a dataset's personal data is handled, chosen when it is created or later."""

    pii_policy_id: int | None = param(POLICY_CHOICE)
    no_personal_data: bool = param(NO_PERSONAL_DATA)
    no_personal_data_reason: str = param(EXEMPT_REASON)

    def decision(self) -> Decision:
        """The decision this choice makes.

        Raises:
            Invalid: a reason without saying there is no personal data, or both a policy and no
                personal data, or a reason too short to mean anything.
        """
        if not self.no_personal_data:
            if self.no_personal_data_reason:
                raise Invalid("a reason is given only with no_personal_data: choose one or the other")
            return Decision(self.pii_policy_id)
        if self.pii_policy_id is not None:
            raise Invalid("choose a policy or no_personal_data, not both")
        return _no_personal_data(self.no_personal_data_reason)


def _no_personal_data(reason: str, lead: str = "") -> Decision:
    """The decision that a dataset needs no policy, with its reason (one rule for both bodies).

    Raises:
        Invalid: no reason, or one too short to mean anything.
    """
    if len(reason) < REASON_MIN:
        raise Invalid(
            f"{lead}give no_personal_data_reason: say why the dataset holds no personal data (at least "
            f"{REASON_MIN} characters); it is kept on record"
        )
    return Decision.none_needed(reason)


def default_policy(session: Session) -> PiiPolicy:
    """The platform's default policy (made again, as the migration made it, if it is gone)."""
    policy = session.scalar(select(PiiPolicy).where(PiiPolicy.is_default))
    if policy is None:
        policy = session.scalar(select(PiiPolicy).where(PiiPolicy.name == DEFAULT_NAME))
        if policy is None:
            policy = PiiPolicy(name=DEFAULT_NAME, entities={e: "placeholder" for e in STRUCTURED}, locale="auto")
            session.add(policy)
        policy.is_default = True
        session.flush()
    return policy


def decide(
    session: Session, dataset: Dataset, decision: Decision, user: User | None, keys: pii.Keys | None = None
) -> int:
    """Record the dataset's decision; returns how many items now wait for de-identification.
    ``keys`` (PII_KEY first) seal or open the originals of a dataset that has items.

    Raises:
        PolicyError: the policy does not exist.
        KeyUnavailable: there are originals to seal or open and no PII_KEY.
    """
    if decision.no_personal_data is not None:
        pending = pii.attach(session, dataset, None, keys)
        dataset.pii_exempt_reason = decision.no_personal_data.strip()
    else:
        policy_id = decision.policy_id if decision.policy_id is not None else default_policy(session).id
        pending = pii.attach(session, dataset, policy_id, keys)
        dataset.pii_exempt_reason = None
    dataset.pii_decided_by = user.id if user is not None else None
    dataset.pii_decided_at = datetime.now(UTC)
    session.flush()
    return pending


def is_decided(dataset: Dataset) -> bool:
    return dataset.pii_policy_id is not None or dataset.pii_exempt_reason is not None


def describe(session: Session, dataset: Dataset) -> dict[str, Any]:
    """The decision as pages and the API show it."""
    policy = session.get(PiiPolicy, dataset.pii_policy_id) if dataset.pii_policy_id is not None else None
    decider = session.get(User, dataset.pii_decided_by) if dataset.pii_decided_by is not None else None
    return {
        "decided": is_decided(dataset),
        "policy_id": dataset.pii_policy_id,
        "policy_name": policy.name if policy else None,
        "platform_default": bool(policy and policy.is_default),
        "no_personal_data_reason": dataset.pii_exempt_reason,
        "decided_by": decider.username if decider else None,
        "decided_at": dataset.pii_decided_at.isoformat() if dataset.pii_decided_at else None,
    }


DATASET_POLICY = ParamSpec(
    "policy_id", "De-identification policy", "int", None, nullable=True, minimum=1, maximum=2**31 - 1,
    help="null: no policy, and no_personal_data_reason says why the texts are used as uploaded",
)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class DatasetPolicy(Values):
    """Change a dataset's decision: a policy, or none with the reason why none is needed."""

    policy_id: int | None = param(DATASET_POLICY)
    no_personal_data_reason: str = param(EXEMPT_REASON)

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetPolicy:
        return cls(policy_id=dataset.pii_policy_id, no_personal_data_reason=dataset.pii_exempt_reason or "")

    def decision(self) -> Decision:
        """Raises: Invalid: no policy and no (long enough) reason."""
        if self.policy_id is not None:
            return Decision(self.policy_id)
        return _no_personal_data(self.no_personal_data_reason, "choose a de-identification policy, or ")


# Texts the platform generates itself (the demo, benchmarks, tests): no personal data.
SYNTHETIC = Decision.none_needed("generated texts (demo, benchmarks or tests): no personal data")
