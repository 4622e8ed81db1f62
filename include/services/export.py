"""Labeled data out of the platform: CSV, JSONL and Parquet, streamed in constant memory.

One row per labeled task: the text (de-identified when the dataset has a policy; originals only
for an admin holding PII_KEY, and audited), the label, who labeled it and how much they agreed,
the model's prediction and probability, timestamps and eval-set membership.

The rows come from a server-side cursor and leave as chunks of bytes, so a million rows never
sit in memory at once. CSV cells that a spreadsheet would run as a formula (starting with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return) get a leading ``'``; so that this stays
reversible, a cell that already starts with ``'`` gets one more. :func:`unneutralise` undoes it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from include.pii.engine import restore
from include.services.pii import decrypt

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
COLUMNS = (
    "task_id",
    "item_id",
    "text",
    "label",
    "annotators",
    "annotator_labels",
    "agreement",
    "prediction",
    "probability",
    "model_version",
    "uncertainty",
    "in_eval",
    "labeled_at",
    "created_at",
)
FETCH = 5_000  # rows per round trip of the server-side cursor
CHUNK = 2_000  # rows per chunk of bytes handed to the web server
PARQUET_GROUP = 50_000  # rows per Parquet row group (bounded memory)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")


class ExportError(ValueError):
    """An export that cannot be made; the message says why."""


_ROWS = """
SELECT t.id, t.item_id, i.text, t.label, a.people, a.labels, t.prelabel_label, t.prelabel_score, t.model_version,
       t.uncertainty_score, (e.text_hash IS NOT NULL AND NOT e.excluded) AS in_eval, t.labeled_at, i.created_at
       {mapping}
FROM tasks t
JOIN items i ON i.id = t.item_id
LEFT JOIN (
    SELECT an.task_id,
           array_agg(coalesce(u.username, an.ls_user_email, '?') ORDER BY an.id) AS people,
           array_agg(an.label ORDER BY an.id) AS labels
    FROM annotations an
    JOIN tasks tt ON tt.id = an.task_id AND tt.dataset_id = :dataset_id AND tt.status = 'labeled'
    LEFT JOIN users u ON u.id = an.annotator_id
    WHERE NOT an.was_cancelled AND NOT an.ground_truth AND an.label IS NOT NULL
    GROUP BY an.task_id
) a ON a.task_id = t.id
LEFT JOIN eval_items e ON e.dataset_id = t.dataset_id AND e.text_hash = i.text_hash
{mapping_join}
WHERE t.dataset_id = :dataset_id AND t.status = 'labeled'
ORDER BY t.id
"""


@dataclass(frozen=True)
class ExportRequest:
    dataset_id: int
    fmt: str
    key: bytes | None = None  # PII_KEY: the originals instead of the de-identified texts

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ExportError(f"unknown format {self.fmt!r}; one of {', '.join(FORMATS)}")


def rows(session: Session, request: ExportRequest) -> Iterator[dict[str, Any]]:
    """The dataset's labeled rows, in task order, from a server-side cursor."""
    with_originals = request.key is not None
    statement = sql_text(
        _ROWS.format(
            mapping=", m.mapping" if with_originals else "",
            mapping_join="LEFT JOIN pii_mappings m ON m.item_id = t.item_id" if with_originals else "",
        )
    )
    result = (
        session.connection()
        .execution_options(stream_results=True, yield_per=FETCH)
        .execute(statement, {"dataset_id": request.dataset_id})
    )
    for row in result:
        people = list(row[4] or [])
        votes = list(row[5] or [])
        label = row[3]
        text = row[2]
        if with_originals and row[13] is not None:
            text = restore(text, decrypt(row[13], request.key))  # type: ignore[arg-type]
        yield {
            "task_id": row[0],
            "item_id": row[1],
            "text": text,
            "label": label,
            "annotators": people,
            "annotator_labels": votes,
            "agreement": round(sum(v == label for v in votes) / len(votes), 4) if votes else None,
            "prediction": row[6],
            "probability": row[7],
            "model_version": row[8],
            "uncertainty": row[9],
            "in_eval": bool(row[10]),
            "labeled_at": row[11],
            "created_at": row[12],
        }


def neutralise(value: str) -> str:
    """A CSV cell a spreadsheet will show as text, never run as a formula (OWASP CSV injection)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def unneutralise(value: str) -> str:
    """The original cell back from :func:`neutralise` (for readers of the CSV)."""
    return value[1:] if value.startswith("'") else value


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, list):
        return neutralise(";".join(str(v) for v in value))
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def csv_chunks(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """CSV with a header; list cells joined by ``;``; UTF-8 (with a BOM, so spreadsheets read it as such)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")
    writer.writerow(COLUMNS)
    for n, record in enumerate(records, start=1):
        writer.writerow([_csv_cell(record[c]) for c in COLUMNS])
        if n % CHUNK == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def jsonl_chunks(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    lines: list[str] = []
    for record in records:
        record["labeled_at"], record["created_at"] = _iso(record["labeled_at"]), _iso(record["created_at"])
        lines.append(json.dumps(record, ensure_ascii=False))
        if len(lines) == CHUNK:
            yield ("\n".join(lines) + "\n").encode("utf-8")
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode("utf-8")


class _Drain(io.RawIOBase):
    """A write-only file that hands out what was written since the last :meth:`take`."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.parts.append(chunk)
        self.position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def parquet_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("task_id", pa.int64()),
            ("item_id", pa.int64()),
            ("text", pa.string()),
            ("label", pa.string()),
            ("annotators", pa.list_(pa.string())),
            ("annotator_labels", pa.list_(pa.string())),
            ("agreement", pa.float64()),
            ("prediction", pa.string()),
            ("probability", pa.float64()),
            ("model_version", pa.string()),
            ("uncertainty", pa.float64()),
            ("in_eval", pa.bool_()),
            ("labeled_at", pa.timestamp("us", tz="UTC")),
            ("created_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def parquet_chunks(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """Parquet written row group by row group to a stream (footer last), never whole in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    columns: dict[str, list[Any]] = {c: [] for c in COLUMNS}

    def flush() -> None:
        writer.write_table(pa.Table.from_pydict(columns, schema=schema))
        for values in columns.values():
            values.clear()

    for record in records:
        for c in COLUMNS:
            columns[c].append(record[c])
        if len(columns["task_id"]) == PARQUET_GROUP:
            flush()
            yield sink.take()
    if columns["task_id"] or sink.position == 0:
        flush()
    writer.close()
    yield sink.take()


def chunks(session: Session, request: ExportRequest) -> Iterator[bytes]:
    """The export as bytes, chunk by chunk, in the requested format."""
    writer = {"csv": csv_chunks, "jsonl": jsonl_chunks, "parquet": parquet_chunks}[request.fmt]
    return writer(rows(session, request))


def filename(dataset_name: str, fmt: str, originals: bool = False) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in dataset_name).strip("-") or "dataset"
    return f"{safe}-labels{'-originals' if originals else ''}.{fmt}"
