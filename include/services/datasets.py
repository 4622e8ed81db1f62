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

from include.db.models import Dataset, Item, Task, User
from include.errors import Invalid, NotFound
from include.params import ParamSpec, Values, group, param
from include.services.paging import Page, PageQuery, paginate
from include.services.privacy import Decision, PrivacyChoice, decide

MAX_TEXT_CHARS = 20_000
# An upload cell beyond this is refused outright (a text over MAX_TEXT_CHARS is only skipped).
MAX_UPLOAD_CELL = 131_072
NAME_RE = re.compile(r"^[\w][\w .\-]{1,127}$")


class DatasetError(Invalid):
    """Bad dataset input; the message is shown to the user as is."""


class DatasetNotFound(NotFound):
    """The dataset id names no dataset (deleted, or a typo in DAG params)."""


NAME = ParamSpec("name", "Name", "str", max_length=128)
DESCRIPTION = ParamSpec("description", "Description", "text", "", max_length=2000)
LABELS = ParamSpec(
    "labels", "Labels", "list", None, nullable=True, max_length=64, help="comma-separated; empty: the LABELS setting"
)
LABEL_DESCRIPTIONS = ParamSpec(
    "label_descriptions", "What each label means", "mapping", None, nullable=True, max_length=500,
    help="optional, one per line: LABEL: description",
)  # fmt: skip
KEEP_COLUMNS = ParamSpec(
    "keep_columns", "Columns to keep", "list", None, nullable=True, max_length=64,
    help="upload columns kept beside the text, de-identified with it; the others are dropped (they may hold "
    "personal data)",
)  # fmt: skip
DEMO_COUNT = ParamSpec("demo", "Demo texts", "int", 0, minimum=0, maximum=5000, help="generated demo texts to add")


@dataclass(frozen=True, kw_only=True)
class NewDataset(Values):
    """A dataset to create: its name, labels and what they mean, its privacy decision (empty:
    the platform default policy), and, from the API, demo texts."""

    name: str = param(NAME)
    description: str = param(DESCRIPTION)
    labels: list[str] | None = param(LABELS)
    label_descriptions: dict[str, str] | None = param(LABEL_DESCRIPTIONS)
    keep_columns: list[str] | None = param(KEEP_COLUMNS)
    demo: int = param(DEMO_COUNT)
    privacy: PrivacyChoice = group(PrivacyChoice)


def get_dataset(session: Session, dataset_id: int) -> Dataset:
    """The dataset, or :class:`DatasetNotFound` with a message fit for a job row."""
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise DatasetNotFound(f"dataset {dataset_id} does not exist")
    return dataset


def dataset_page(session: Session, query: PageQuery) -> Page[Dataset]:
    """Datasets by id, one page, with the total (a platform has tens of them, not millions)."""
    return paginate(session, select(Dataset).order_by(Dataset.id), query.page, query.limit, count=True)


def list_datasets(session: Session, *, newest_first: bool = False) -> list[Dataset]:
    order = Dataset.created_at.desc() if newest_first else Dataset.name
    return list(session.scalars(select(Dataset).order_by(order)))


def all_dataset_ids(session: Session) -> list[int]:
    return [int(i) for i in session.scalars(select(Dataset.id).order_by(Dataset.id))]


def datasets_in_label_studio(session: Session, dataset_id: int | None = None) -> list[int]:
    """Ids of datasets that have a Label Studio project (only ``dataset_id``'s, when given)."""
    stmt = select(Dataset.id).where(Dataset.ls_project_id.is_not(None)).order_by(Dataset.id)
    if dataset_id is not None:
        stmt = stmt.where(Dataset.id == dataset_id)
    return [int(i) for i in session.scalars(stmt)]


def ls_project_ids(session: Session, dataset_id: int | None = None) -> list[int]:
    """The Label Studio projects of one dataset, or of every dataset."""
    stmt = select(Dataset.ls_project_id).where(Dataset.ls_project_id.is_not(None)).distinct()
    if dataset_id is not None:
        stmt = stmt.where(Dataset.id == dataset_id)
    return sorted(int(p) for p in session.scalars(stmt) if p is not None)


def item_hashes(session: Session, dataset_id: int) -> list[str]:
    return [
        str(h) for h in session.scalars(select(Item.text_hash).where(Item.dataset_id == dataset_id).order_by(Item.id))
    ]


def datasets_with_policy(session: Session) -> list[int]:
    return [int(i) for i in session.scalars(select(Dataset.id).where(Dataset.pii_policy_id.is_not(None)))]


def datasets_of_projects(session: Session, project_ids: list[int]) -> list[Dataset]:
    return list(session.scalars(select(Dataset).where(Dataset.ls_project_id.in_(project_ids)).order_by(Dataset.id)))


def eval_items(session: Session, dataset_id: int, hashes: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Task id and text of items by text hash (what an evaluation report links to)."""
    wanted = list(hashes)
    if not wanted:
        return {}
    rows = session.execute(
        select(Item.text_hash, Task.id, Item.text)
        .join(Task, Task.item_id == Item.id)
        .where(Item.dataset_id == dataset_id, Item.text_hash.in_(wanted))
    ).tuples()
    return {str(h): {"task_id": int(t), "text": str(text)} for h, t, text in rows}


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
    # Where the first duplicates were ("notes.csv line 7"), never their text: the report travels
    # in a flash cookie and in logs, and the text may hold personal data.
    duplicate_lines: list[str] = field(default_factory=list)

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


def check_storable(text: str, where: str) -> None:
    """Refuse text PostgreSQL cannot store: NUL characters and unpaired surrogates.

    Raises:
        DatasetError: naming ``where`` (e.g. "data.csv line 7") and the problem.
    """
    if "\x00" in text:
        raise DatasetError(f"{where}: contains a NUL character (\\x00), which cannot be stored; remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start : exc.end].encode("unicode_escape").decode()
        raise DatasetError(f"{where}: contains {bad}, an unpaired surrogate that is not valid Unicode") from None


def _check_value(value: Any, where: str) -> None:
    """:func:`check_storable` on every string of a JSON-like value (keys included)."""
    if isinstance(value, str):
        check_storable(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_value(str(key), where)
            _check_value(item, where)
    elif isinstance(value, list):
        for item in value:
            _check_value(item, where)


def validate_labels(labels: Sequence[str]) -> list[str]:
    if isinstance(labels, str) or not all(isinstance(label, str) for label in labels):
        raise DatasetError("labels must be a list of names")
    cleaned = [label.strip() for label in labels if label.strip()]
    if len(cleaned) < 2:
        raise DatasetError("a dataset needs at least two labels")
    if len(set(cleaned)) != len(cleaned):
        raise DatasetError("labels must be distinct")
    for label in cleaned:
        check_storable(label, f"label {label!r}")
        if len(label) > 64 or any(ch in label for ch in '<>"&'):
            raise DatasetError(f'label {label!r} must be at most 64 characters without <, >, " or &')
    return cleaned


def validate_label_descriptions(descriptions: Any, labels: Sequence[str]) -> dict[str, str]:
    """What each label means (a few words each, optional); only labels of the dataset."""
    if descriptions in (None, "", {}):
        return {}
    if isinstance(descriptions, str):
        parsed: dict[str, str] = {}
        for number, line in enumerate(descriptions.splitlines(), start=1):
            if not line.strip():
                continue
            label, sep, meaning = line.partition(":")
            if not sep:
                raise DatasetError(f"label descriptions line {number}: write it as LABEL: what it means")
            parsed[label.strip()] = meaning.strip()
        descriptions = parsed
    if not isinstance(descriptions, dict) or not all(isinstance(v, str) for v in descriptions.values()):
        raise DatasetError("label descriptions must map each label to a short text")
    unknown = [str(k) for k in descriptions if k not in labels]
    if unknown:
        raise DatasetError(f"label descriptions name labels the dataset does not have: {', '.join(unknown)}")
    cleaned = {str(k): v.strip()[:500] for k, v in descriptions.items() if v.strip()}
    for label, meaning in cleaned.items():
        check_storable(meaning, f"the description of {label}")
    return cleaned


def create_dataset(
    session: Session,
    name: str,
    *,
    labels: Sequence[str],
    description: str = "",
    label_descriptions: Any = None,
    created_by: User | None = None,
    keep_columns: Sequence[str] = (),
    privacy: Decision,
) -> Dataset:
    """Create an empty dataset with its privacy decision (required: privacy by default is
    :data:`include.services.privacy.PLATFORM_DEFAULT`); raises DatasetError for a bad or taken
    name or bad labels, PolicyError for a policy that does not exist."""
    name = name.strip()
    if not NAME_RE.match(name):
        raise DatasetError("a dataset name is 2-128 letters, digits, spaces, dots, dashes or underscores")
    check_storable(description, "the description")
    cleaned = validate_labels(labels)
    if session.scalar(select(Dataset.id).where(func.lower(Dataset.name) == name.lower())) is not None:
        raise DatasetError(f"a dataset named {name!r} already exists")
    dataset = Dataset(
        name=name,
        description=description.strip(),
        labels=cleaned,
        label_descriptions=validate_label_descriptions(label_descriptions, cleaned),
        keep_columns=list(dict.fromkeys(c.strip() for c in keep_columns if c.strip())),
        created_by=created_by.id if created_by else None,
    )
    session.add(dataset)
    session.flush()
    decide(session, dataset, privacy, created_by)
    return dataset


def create_with_items(
    session: Session,
    request: NewDataset,
    rows: Iterable[tuple[str, dict[str, Any]]],
    *,
    default_labels: Sequence[str],
    created_by: User | None,
    key: bytes | None = None,
) -> tuple[Dataset, ItemsReport]:
    """Create a dataset as a person asked for it and add its first items (none: an empty one);
    ``key`` (PII_KEY) seals them when the dataset has a policy.

    Raises:
        DatasetError: a bad or taken name, bad labels or descriptions, an item that cannot be stored.
        KeyUnavailable: the dataset has a policy, items came and there is no PII_KEY.
    """
    dataset = create_dataset(
        session,
        request.name,
        labels=request.labels or list(default_labels),
        description=request.description,
        label_descriptions=request.label_descriptions,
        created_by=created_by,
        keep_columns=request.keep_columns or (),
        privacy=request.privacy.decision(),
    )
    return dataset, add_items(session, dataset, rows, key=key)


# Arrays instead of a multi-row VALUES list: compiles once, whatever the batch size.
_INSERT_ITEMS = sql_text(
    """
    INSERT INTO items (dataset_id, text, text_hash, source, sealed, pii_status)
    SELECT :dataset_id, u.text, u.text_hash, u.source::jsonb, u.sealed, :pii_status
    FROM unnest(
        CAST(:texts AS text[]), CAST(:hashes AS varchar[]), CAST(:sources AS text[]), CAST(:sealed AS bytea[])
    ) AS u(text, text_hash, source, sealed)
    ON CONFLICT ON CONSTRAINT uq_items_dataset_text_hash DO NOTHING
    RETURNING text_hash
    """
)


def add_items(
    session: Session,
    dataset: Dataset,
    rows: Iterable[tuple[str, dict[str, Any]]],
    *,
    key: bytes | None = None,
    batch_size: int = 5000,
) -> ItemsReport:
    """Insert texts (with source metadata), skipping ones already in the dataset or repeated.

    One multi-row ``INSERT .. ON CONFLICT DO NOTHING`` per batch; duplicates are counted from
    what the database did not insert, so concurrent uploads stay correct too. In a dataset with
    a policy the originals are sealed with ``key`` (PII_KEY) until de-identified (sealing.py):
    nothing original is at rest in plaintext, even before the deidentify step.

    Raises:
        KeyUnavailable: the dataset has a policy and there is no PII_KEY (nothing is stored).
    """
    from include.services import sealing
    from include.services.pii import KeyUnavailable

    sealed = dataset.pii_policy_id is not None
    kept = dataset.keep_columns or ()
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
                    # with a policy, a new text waits for the deidentify step like the others
                    "pii_status": "pending" if sealed else "none",
                    "texts": ["" if sealed else row["text"] for row in batch],
                    "hashes": [row["text_hash"] for row in batch],
                    "sources": [json.dumps(row["source"], default=str) for row in batch],
                    "sealed": [row["sealed"] for row in batch],
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
                if len(report.duplicate_lines) < 5:
                    report.duplicate_lines.append(f"{row['where']} (already in the dataset)")
        batch.clear()

    for number, (raw, source) in enumerate(rows, start=1):
        where = f"{source.get('file', 'item')} line {source.get('line', number)}"
        check_storable(raw or "", where)
        _check_value(source, where)
        text = normalize_text(raw or "")
        if not text:
            report.empty += 1
            continue
        if len(text) > MAX_TEXT_CHARS:
            report.too_long += 1
            continue
        if sealed and key is None:  # before anything is stored (an empty upload needs no key)
            raise KeyUnavailable(
                "PII_KEY is not set: the dataset has a de-identification policy, so its originals are "
                "stored encrypted until de-identified, and that needs the key"
            )
        digest = sealing.digest(text, key) if sealed and key is not None else text_hash(text)
        if digest in seen:
            report.duplicates += 1
            if len(report.duplicate_lines) < 5:
                report.duplicate_lines.append(f"{where} (repeats an earlier row)")
            continue
        seen.add(digest)
        readable, blob = source, None
        if sealed and key is not None:
            readable, hidden = sealing.split_kept(source, kept)
            blob = sealing.seal(text, hidden, key)
        batch.append({"text": text, "text_hash": digest, "source": readable, "sealed": blob, "where": where})
        if len(batch) >= batch_size:
            flush()
    flush()
    return report


def _check_row(row: tuple[str, dict[str, Any]], where: str) -> None:
    text, source = row
    check_storable(text, where)
    if len(text) > MAX_UPLOAD_CELL:
        raise DatasetError(f"{where}: the text is longer than {MAX_UPLOAD_CELL:,} characters")
    _check_value(source, where)


def _csv_problem(exc: csv.Error) -> str:
    message = str(exc)
    if "field larger than field limit" in message:
        return f"a cell is longer than {csv.field_size_limit():,} characters; texts are at most {MAX_TEXT_CHARS:,}"
    return f"not valid CSV ({message})"


@dataclass
class Upload:
    """The rows of an upload, and the columns it had that were not kept."""

    rows: list[tuple[str, dict[str, Any]]]
    dropped_columns: list[str]


def parse_upload(
    data: bytes,
    filename: str,
    *,
    text_column: str = "text",
    max_rows: int = 100_000,
    keep_columns: Sequence[str] = (),
) -> Upload:
    """Rows of (text, source metadata) from a CSV or JSONL upload.

    Only the text and the ``keep_columns`` are kept (with the file and line): any other column
    (``customer_name``, ``phone``...) may hold personal data no policy was asked to replace, so
    it is dropped unless the dataset allow-lists it, and then de-identified with the text.

    Raises:
        DatasetError: unknown format, undecodable bytes, a missing text column, too many rows.
    """
    lower = filename.lower()
    if not lower.endswith((".csv", ".jsonl", ".ndjson")):
        raise DatasetError("upload a .csv (with a header row) or a .jsonl file")
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{filename} is not UTF-8 text") from None
    rows: list[tuple[str, dict[str, Any]]] = []
    kept, dropped = set(keep_columns), set[str]()

    def extra_of(record: dict[Any, Any]) -> dict[str, Any]:
        dropped.update(str(k) for k in record if k not in kept and k != text_column and k is not None)
        return {k: v for k, v in record.items() if k in kept}

    if lower.endswith(".csv"):
        reader = csv.DictReader(io.StringIO(content))
        last_line = 0
        try:
            fieldnames = reader.fieldnames
            last_line = reader.line_num
            if not fieldnames or text_column not in fieldnames:
                raise DatasetError(f"{filename} has no {text_column!r} column (columns: {fieldnames or []})")
            for record in reader:
                number = reader.line_num
                if len(rows) >= max_rows:
                    raise DatasetError(f"{filename} has more than {max_rows} rows; split it into smaller files")
                row = (record.get(text_column) or "", {"file": filename, "line": number, **extra_of(record)})
                _check_row(row, f"{filename} line {number}")
                rows.append(row)
                last_line = number
        except csv.Error as exc:
            # e.g. a cell over the csv module's field limit (131,072 characters), or a broken quote
            raise DatasetError(f"{filename} line {last_line + 1}: {_csv_problem(exc)}") from None
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
            row = (record[text_column], {"file": filename, "line": number, **extra_of(record)})
            _check_row(row, f"{filename} line {number}")
            rows.append(row)
    else:
        raise DatasetError("upload a .csv (with a header row) or a .jsonl file")
    if not rows:
        raise DatasetError(f"{filename} has no rows")
    return Upload(rows, sorted(dropped))
