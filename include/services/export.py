"""Labeled data out of the platform: CSV, JSONL and Parquet, streamed in constant memory.

One row per labeled task: the text (de-identified when the dataset has a policy; originals only
for an admin holding PII_KEY, and audited), the label, who labeled it and how much they agreed,
the model's prediction and probability, timestamps and eval-set membership.

How the bytes are made, fastest first:

* CSV and JSONL of the stored texts: PostgreSQL writes them (``COPY (SELECT ...) TO STDOUT``), so
  rows never become Python objects; psycopg hands the stream over in blocks. A hand-written
  writer would be several times slower (measured in bench/export.py).
* Parquet of the stored texts: Arrow batches from PostgreSQL's binary COPY through ADBC's
  PostgreSQL driver (Apache Arrow's), written row group by row group by pyarrow.
* Originals (``key`` given): each text is restored from its encrypted mapping in Python, so that
  path goes row by row (a server-side cursor) through the same writers.

CSV cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return) get a leading ``'``; so that this stays reversible, a cell that already
starts with ``'`` gets one more. :func:`unneutralise` undoes it. CSV starts with a UTF-8 BOM so
spreadsheets read it as UTF-8.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from include.errors import Invalid
from include.params import ParamSpec, Values, param
from include.pii.mapping import Keys

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}

EXPORT_FORMAT = ParamSpec("format", "Format", "choice", "jsonl", choices=tuple(FORMATS))
ORIGINALS = ParamSpec(
    "originals", "Originals", "bool", False, help="the texts before de-identification (admins, PII_KEY set; audited)"
)


@dataclass(frozen=True, kw_only=True)
class ExportQuery(Values):
    """How a dataset's labels are downloaded."""

    format: str = param(EXPORT_FORMAT)
    originals: bool = param(ORIGINALS)


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
    "label_basis",
    "review",
    "reviewer",
    "reviewed_at",
)
FETCH = 20_000  # rows per round trip of the server-side cursor
CHUNK = 2_000  # rows per chunk of bytes handed to the web server (Python writers)
BLOCK = 1 << 20  # bytes per chunk handed to the web server (COPY)
PARQUET_GROUP = 50_000  # rows per Parquet row group (bounded memory)
WORK_MEM = "256MB"  # per sort or hash of an export's query, on the server
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "'")
BOM = "\ufeff".encode()


class ExportError(Invalid):
    """An export that cannot be made; the message says why."""


# The rows, typed; ``{extra}`` adds the encrypted mapping when originals are wanted.
_ROWS = """
SELECT t.id AS task_id, t.item_id, i.text, t.label, a.people AS annotators, a.labels AS annotator_labels,
       a.agreement, t.prelabel_label AS prediction, t.prelabel_score AS probability, t.model_version,
       t.uncertainty_score AS uncertainty, (e.text_hash IS NOT NULL AND NOT e.excluded) AS in_eval,
       t.labeled_at, i.created_at, t.label_basis, rv.verdict AS review, rv.reviewer, rv.created_at AS reviewed_at
       {extra}
FROM tasks t
JOIN items i ON i.id = t.item_id
LEFT JOIN (
    SELECT an.task_id,
           array_agg(coalesce(u.username, an.ls_user_email, '?') ORDER BY an.id) AS people,
           array_agg(an.label ORDER BY an.id) AS labels,
           round(avg((an.label = tt.label)::int), 4)::float8 AS agreement
    FROM annotations an
    JOIN tasks tt ON tt.id = an.task_id AND tt.dataset_id = %(dataset_id)s AND tt.status = 'labeled'
    LEFT JOIN users u ON u.id = an.annotator_id
    WHERE NOT an.was_cancelled AND NOT an.ground_truth AND an.label IS NOT NULL
    GROUP BY an.task_id
) a ON a.task_id = t.id
LEFT JOIN eval_items e ON e.dataset_id = t.dataset_id AND e.text_hash = i.text_hash
LEFT JOIN (  -- the task's latest verdict (include.services.review)
    SELECT DISTINCT ON (r.task_id) r.task_id, r.verdict, ru.username AS reviewer, r.created_at
    FROM reviews r
    JOIN tasks rt ON rt.id = r.task_id AND rt.dataset_id = %(dataset_id)s
    LEFT JOIN users ru ON ru.id = r.reviewer_id
    ORDER BY r.task_id, r.id DESC
) rv ON rv.task_id = t.id
{join}
WHERE t.dataset_id = %(dataset_id)s AND t.status = 'labeled' AND i.pii_status <> 'pending'
ORDER BY t.id
"""


def _neutral_sql(expr: str) -> str:
    """SQL for :func:`neutralise`: a ' before a cell starting with = + - @ tab CR or ' (by code point)."""
    return f"CASE WHEN ascii({expr}) IN (61, 43, 45, 64, 9, 13, 39) THEN '''' || {expr} ELSE {expr} END"


def _iso_sql(expr: str) -> str:
    """ISO 8601 with a T, in UTC (the export's transaction runs with TimeZone UTC)."""
    return f"replace({expr}::text, ' ', 'T')"


_CSV = f"""
COPY (
    SELECT r.task_id, r.item_id, {_neutral_sql("r.text")} AS text, {_neutral_sql("r.label")} AS label,
           {_neutral_sql("array_to_string(r.annotators, ';')")} AS annotators,
           {_neutral_sql("array_to_string(r.annotator_labels, ';')")} AS annotator_labels,
           r.agreement, {_neutral_sql("r.prediction")} AS prediction, r.probability,
           {_neutral_sql("r.model_version")} AS model_version, r.uncertainty,
           CASE WHEN r.in_eval THEN 'true' ELSE 'false' END AS in_eval,
           {_iso_sql("r.labeled_at")} AS labeled_at, {_iso_sql("r.created_at")} AS created_at,
           r.label_basis, r.review, {_neutral_sql("r.reviewer")} AS reviewer, {_iso_sql("r.reviewed_at")} AS reviewed_at
    FROM ({_ROWS.format(extra="", join="")}) r
) TO STDOUT WITH (FORMAT csv, HEADER true)
"""
# One JSON object per line: row_to_json of the row (about 1.2x faster than json_build_object with
# its 36 arguments, bench/export.py). CSV format with a quote and a delimiter that JSON never
# contains raw (to_json escapes every control character), so PostgreSQL writes each object as it is.
_JSONL = f"""
COPY (
    SELECT row_to_json(j)::text FROM (
        SELECT r.task_id, r.item_id, r.text, r.label,
               coalesce(r.annotators, '{{}}') AS annotators, coalesce(r.annotator_labels, '{{}}') AS annotator_labels,
               r.agreement, r.prediction, r.probability, r.model_version, r.uncertainty, r.in_eval,
               r.labeled_at, r.created_at, r.label_basis, r.review, r.reviewer, r.reviewed_at
        FROM ({_ROWS.format(extra="", join="")}) r
    ) j
) TO STDOUT WITH (FORMAT csv, DELIMITER E'\\x1f', QUOTE E'\\x1e')
"""


@dataclass(frozen=True)
class ExportRequest:
    dataset_id: int
    fmt: str
    key: Keys | None = None  # PII_KEY (and the keys it replaced): the originals, not the de-identified texts

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise ExportError(f"unknown format {self.fmt!r}; one of {', '.join(FORMATS)}")


def _driver(session: Session) -> Any:
    raw = session.connection().connection.driver_connection
    if raw is None:
        raise RuntimeError("no database connection")
    return raw


def _tune(cur: Any) -> None:
    """Room to sort and hash a million rows in memory (this transaction only), and UTC times."""
    cur.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
    cur.execute("SET LOCAL TimeZone = 'UTC'")


def _copy_out(session: Session, statement: str, dataset_id: int, first: bytes = b"") -> Iterator[bytes]:
    """What PostgreSQL's COPY writes, in blocks of about :data:`BLOCK` bytes."""
    pending = [first] if first else []
    size = len(first)
    with _driver(session).cursor() as cur:
        _tune(cur)
    with _driver(session).cursor() as cur, cur.copy(statement, {"dataset_id": dataset_id}) as copy:
        for data in copy:
            pending.append(bytes(data))
            size += len(data)
            if size >= BLOCK:
                yield b"".join(pending)
                pending, size = [], 0
    if pending:
        yield b"".join(pending)


def _tuples(session: Session, request: ExportRequest) -> Iterator[list[tuple[Any, ...]]]:
    """Batches of row tuples (columns as :data:`COLUMNS`, plus the mapping when keyed)."""
    keyed = request.key is not None
    sql = _ROWS.format(
        extra=", m.mapping" if keyed else "",
        join="LEFT JOIN pii_mappings m ON m.item_id = t.item_id" if keyed else "",
    )
    with _driver(session).cursor() as cur:
        _tune(cur)
    with _driver(session).cursor(name="labelops_export") as cur:
        cur.itersize = FETCH
        cur.execute(sql, {"dataset_id": request.dataset_id})
        while batch := cur.fetchmany(FETCH):
            yield batch


def rows(session: Session, request: ExportRequest) -> Iterator[dict[str, Any]]:
    """The dataset's labeled rows as dicts, in task order (originals restored when keyed)."""
    from include.pii.mapping import restore
    from include.services.pii import decrypt

    for batch in _tuples(session, request):
        for row in batch:
            record = dict(zip(COLUMNS, row, strict=False))
            record["annotators"] = list(record["annotators"] or [])
            record["annotator_labels"] = list(record["annotator_labels"] or [])
            if request.key is not None and row[len(COLUMNS)] is not None:
                record["text"] = restore(record["text"], decrypt(row[len(COLUMNS)], request.key))
            yield record


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
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, list):
        return neutralise(";".join(str(v) for v in value))
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def csv_chunks(records: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """CSV written in Python (the originals path); the same bytes as the COPY path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
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
        for column in ("labeled_at", "created_at", "reviewed_at"):
            record[column] = _iso(record[column])
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
            ("label_basis", pa.string()),
            ("review", pa.string()),
            ("reviewer", pa.string()),
            ("reviewed_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def parquet_chunks(batches: Iterator[list[tuple[Any, ...]]]) -> Iterator[bytes]:
    """Parquet written row group by row group to a stream (footer last), never whole in memory."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[tuple[Any, ...]] = []

    def flush() -> None:
        columns: list[Any] = list(zip(*pending, strict=False)) if pending else [[] for _ in COLUMNS]
        arrays = [pa.array(columns[k], type=schema.field(k).type) for k in range(len(COLUMNS))]
        writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
        pending.clear()

    wrote = False
    for batch in batches:
        pending.extend(row[: len(COLUMNS)] for row in batch)
        if len(pending) >= PARQUET_GROUP:
            flush()
            wrote = True
            yield sink.take()
    if pending or not wrote:
        flush()
    writer.close()
    yield sink.take()


def _adbc_uri(session: Session) -> str:
    """A libpq URI for the session's database (ADBC opens its own connection)."""
    url = session.get_bind().engine.url
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _arrow_chunks(session: Session, dataset_id: int) -> Iterator[bytes]:
    """Parquet of the stored texts from Arrow batches that ADBC's PostgreSQL driver decodes from
    PostgreSQL's binary COPY in C++: no Python object per row or cell (psycopg's tuples cap the
    row-by-row path at ~56k rows/s, bench/export.py). Its own connection, so its own snapshot."""
    import adbc_driver_postgresql.dbapi as adbc
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema()
    sink = _Drain()
    writer = pq.ParquetWriter(sink, schema, compression="zstd")
    pending: list[Any] = []
    rows, wrote = 0, False
    with adbc.connect(_adbc_uri(session)) as conn, conn.cursor() as cur:
        cur.execute(f"SET work_mem = '{WORK_MEM}'")
        # the id is an int, inlined: ADBC streams a COPY only for a query without parameters
        cur.execute(_ROWS.format(extra="", join="").replace("%(dataset_id)s", str(int(dataset_id))))
        for batch in cur.fetch_record_batch():
            pending.append(batch)
            rows += batch.num_rows
            if rows >= PARQUET_GROUP:
                writer.write_table(pa.Table.from_batches(pending).cast(schema))
                pending, rows, wrote = [], 0, True
                yield sink.take()
    if pending or not wrote:
        table = pa.Table.from_batches(pending) if pending else schema.empty_table()
        writer.write_table(table.cast(schema))
    writer.close()
    yield sink.take()


def _restored_batches(session: Session, request: ExportRequest) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for record in rows(session, request):
        batch.append(tuple(record[c] for c in COLUMNS))
        if len(batch) == FETCH:
            yield batch
            batch = []
    if batch:
        yield batch


def chunks(session: Session, request: ExportRequest) -> Iterator[bytes]:
    """The export as bytes, chunk by chunk, in the requested format."""
    if request.fmt == "parquet":
        if request.key is None and session.get_bind().dialect.name == "postgresql":
            return _arrow_chunks(session, request.dataset_id)
        return parquet_chunks(_restored_batches(session, request) if request.key else _tuples(session, request))
    if request.key is not None:
        writer = csv_chunks if request.fmt == "csv" else jsonl_chunks
        return writer(rows(session, request))
    if request.fmt == "csv":
        return _copy_out(session, _CSV, request.dataset_id, first=BOM)
    return _copy_out(session, _JSONL, request.dataset_id)


def filename(dataset_name: str, fmt: str, originals: bool = False) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in dataset_name).strip("-") or "dataset"
    return f"{safe}-labels{'-originals' if originals else ''}.{fmt}"
