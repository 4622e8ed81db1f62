"""Demo users and the demo dataset (the seed's "100 demo texts"). Only `seed_demo` makes accounts
with known passwords, and it returns them so the caller can show them once."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from include.db.models import Dataset, Role
from include.demo.texts import DEMO_LABEL_DESCRIPTIONS, DEMO_LABELS, generate_demo_texts
from include.services.datasets import add_items, create_dataset
from include.services.privacy import SYNTHETIC
from include.services.users import create_user, find_user, generate_password

DEMO_USERS = (("admin", Role.ADMIN), ("alice", Role.ANNOTATOR), ("bob", Role.ANNOTATOR))
DEMO_DATASET = "demo"


@dataclass
class SeedResult:
    created_users: dict[str, str] = field(default_factory=dict)  # username -> password (new accounts only)
    dataset_id: int = 0
    items_added: int = 0


def seed_demo(
    session: Session, *, n_texts: int = 100, seed: int = 0, email_domain: str = "labelops.local"
) -> SeedResult:
    """Create the demo accounts and dataset if missing; idempotent."""
    result = SeedResult()
    for username, role in DEMO_USERS:
        if find_user(session, username) is None:
            password = generate_password()
            create_user(session, username, f"{username}@{email_domain}", password, role)
            result.created_users[username] = password
    dataset = session.scalar(select(Dataset).where(Dataset.name == DEMO_DATASET))
    if dataset is None:
        dataset = create_dataset(
            session,
            DEMO_DATASET,
            labels=DEMO_LABELS,
            description="Product inspection notes: OK or NG (demo data)",
            label_descriptions=DEMO_LABEL_DESCRIPTIONS,
            privacy=SYNTHETIC,
        )
    texts = generate_demo_texts(n_texts, seed=seed)
    report = add_items(session, dataset, [(t.text, {"demo": True}) for t in texts])
    result.dataset_id = dataset.id
    result.items_added = report.added
    return result
