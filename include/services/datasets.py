"""Datasets and their items: creation, deduplicated bulk insert, upload parsing, statistics."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from include.config import DEFAULT_LABELS
from include.db.models import Dataset, User

MAX_TEXT_CHARS = 20_000
NAME_RE = re.compile(r"^[\w][\w .\-]{1,127}$")


class DatasetError(ValueError):
    """Bad dataset input; the message is shown to the user as is."""


class DatasetNotFound(LookupError):
    """The dataset id names no dataset (deleted, or a typo in DAG params)."""


def get_dataset(session: Session, dataset_id: int) -> Dataset:
    """The dataset, or :class:`DatasetNotFound` with a message fit for a job row."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise DatasetNotFound(f"dataset {dataset_id} does not exist")
    return dataset


def text_hash(text: str) -> str:
    """sha256 of the text as stored (whitespace-trimmed), the deduplication key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalize_text(text: str) -> str:
    return text.strip()


@dataclass
class ItemsReport:
    """What happened to a batch of texts: how many were added and what was skipped."""

    added: int = 0
    duplicates: int = 0
    empty: int = 0
    too_long: int = 0
    duplicate_examples: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        parts = [f"added {self.added} items"]
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicate texts skipped")
        if self.empty:
            parts.append(f"{self.empty} empty rows skipped")
        if self.too_long:
            parts.append(f"{self.too_long} texts over {MAX_TEXT_CHARS} characters skipped")
        return ", ".join(parts)


def validate_labels(labels: Sequence[str]) -> list[str]:
    cleaned = [label.strip() for label in labels if label.strip()]
    if len(cleaned) < 2:
        raise DatasetError("a dataset needs at least two labels")
    if len(set(cleaned)) != len(cleaned):
        raise DatasetError("labels must be distinct")
    for label in cleaned:
        if len(label) > 64 or any(ch in label for ch in '<>"&'):
            raise DatasetError(f'label {label!r} must be at most 64 characters without <, >, " or &')
    return cleaned


def create_dataset(
    session: Session,
    name: str,
    *,
    description: str = "",
    labels: Sequence[str] = DEFAULT_LABELS,
    created_by: User | None = None,
) -> Dataset:
    """Create an empty dataset; raises DatasetError for a bad or taken name."""
    name = name.strip()
    if not NAME_RE.match(name):
        raise DatasetError("a dataset name is 2-128 letters, digits, spaces, dots, dashes or underscores")
    if session.scalar(select(Dataset.id).where(func.lower(Dataset.name) == name.lower())) is not None:
        raise DatasetError(f"a dataset named {name!r} already exists")
    dataset = Dataset(
        name=name,
        description=description.strip(),
        labels=validate_labels(labels),
        created_by=created_by.id if created_by else None,
    )
    session.add(dataset)
    session.flush()
    return dataset


# Arrays instead of a multi-row VALUES list: compiles once, whatever the batch size.
_INSERT_ITEMS = sql_text(
    """
    INSERT INTO items (dataset_id, text, text_hash, source)
    SELECT :dataset_id, u.text, u.text_hash, u.source::jsonb
    FROM unnest(CAST(:texts AS text[]), CAST(:hashes AS varchar[]), CAST(:sources AS text[]))
        AS u(text, text_hash, source)
    ON CONFLICT ON CONSTRAINT uq_items_dataset_text_hash DO NOTHING
    RETURNING text_hash
    """
)


def add_items(
    session: Session,
    dataset: Dataset,
    rows: Iterable[tuple[str, dict[str, Any]]],
    *,
    batch_size: int = 5000,
) -> ItemsReport:
    """Insert texts (with source metadata), skipping ones already in the dataset or repeated.

    One multi-row ``INSERT .. ON CONFLICT DO NOTHING`` per batch; duplicates are counted from
    what the database did not insert, so concurrent uploads stay correct too.
    """
    report = ItemsReport()
    seen: set[str] = set()
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if not batch:
            return
        inserted = set(
            session.scalars(
                _INSERT_ITEMS,
                {
                    "dataset_id": dataset.id,
                    "texts": [row["text"] for row in batch],
                    "hashes": [row["text_hash"] for row in batch],
                    "sources": [json.dumps(row["source"], default=str) for row in batch],
                },
            )
        )
        report.added += len(inserted)
        session.execute(
            update(Dataset).where(Dataset.id == dataset.id).values(item_count=Dataset.item_count + len(inserted))
        )
        for row in batch:
            if row["text_hash"] not in inserted:
                report.duplicates += 1
                if len(report.duplicate_examples) < 5:
                    report.duplicate_examples.append(row["text"][:80])
        batch.clear()

    for raw, source in rows:
        text = normalize_text(raw or "")
        if not text:
            report.empty += 1
            continue
        if len(text) > MAX_TEXT_CHARS:
            report.too_long += 1
            continue
        digest = text_hash(text)
        if digest in seen:
            report.duplicates += 1
            if len(report.duplicate_examples) < 5:
                report.duplicate_examples.append(text[:80])
            continue
        seen.add(digest)
        batch.append({"dataset_id": dataset.id, "text": text, "text_hash": digest, "source": source})
        if len(batch) >= batch_size:
            flush()
    flush()
    return report


def parse_upload(
    data: bytes,
    filename: str,
    *,
    text_column: str = "text",
    max_rows: int = 100_000,
) -> list[tuple[str, dict[str, Any]]]:
    """Rows of (text, source metadata) from a CSV or JSONL upload.

    Raises:
        DatasetError: unknown format, undecodable bytes, a missing text column, too many rows.
    """
    lower = filename.lower()
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{filename} is not UTF-8 text") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    if lower.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(content))
        if not reader.fieldnames or text_column not in reader.fieldnames:
            raise DatasetError(f"{filename} has no {text_column!r} column (columns: {reader.fieldnames or []})")
        for number, record in enumerate(reader, start=2):
            if len(rows) >= max_rows:
                raise DatasetError(f"{filename} has more than {max_rows} rows; split it into smaller files")
            extra = {k: v for k, v in record.items() if k != text_column and k is not None}
            rows.append((record.get(text_column) or "", {"file": filename, "line": number, **extra}))
    elif lower.endswith((".jsonl", ".ndjson")):
        for number, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            if len(rows) >= max_rows:
                raise DatasetError(f"{filename} has more than {max_rows} rows; split it into smaller files")
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{filename} line {number} is not valid JSON: {exc.msg}") from None
            if not isinstance(record, dict) or not isinstance(record.get(text_column), str):
                raise DatasetError(f"{filename} line {number} has no string {text_column!r} field")
            extra = {k: v for k, v in record.items() if k != text_column}
            rows.append((record[text_column], {"file": filename, "line": number, **extra}))
    else:
        raise DatasetError("upload a .csv (with a header row) or a .jsonl file")
    if not rows:
        raise DatasetError(f"{filename} has no rows")
    return rows
