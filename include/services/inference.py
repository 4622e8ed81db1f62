"""Batch inference runs: which model over which texts, their results, and the downloads.

A run is prepared here (a dataset, or an uploaded file whose texts are stored as the run's
inputs) and carried out by the ``batch_inference`` pipeline on the GPU workers. Results are
keyed by (run, row), so a retried task resumes after the last row it wrote instead of
predicting twice.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from include.db.models import Dataset, InferenceInput, InferenceResult, InferenceRun, ModelStatus, ModelVersion, User
from include.errors import Conflict, Invalid, NotFound
from include.ml.scoring import uncertainty
from include.params import ParamSpec, Values, param
from include.services.datasets import get_dataset, parse_upload, text_hash
from include.services.export import CHUNK, neutralise
from include.services.paging import Page, PageQuery, paginate

MAX_UPLOAD_ROWS = 1_000_000
# An uploaded run's inputs and every run's results are deleted this long after the run ended:
# they may quote personal data (de-identified, but still copies) and nobody needs them forever.
RETENTION = timedelta(days=30)
DOWNLOADS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson; charset=utf-8"}


class InferenceError(Invalid):
    """A run that cannot be prepared or carried out; the message says why."""


class InferenceNotFound(InferenceError, NotFound):
    """The model or run named does not exist."""


INFERENCE_DATASET = ParamSpec("dataset_id", "Dataset", "dataset", nullable=True, help="run over this dataset")
INFERENCE_MODEL = ParamSpec(
    "model_id", "Model version", "int", None, nullable=True, minimum=1, maximum=2**31 - 1,
    help="empty: the dataset's promoted model (an uploaded file needs one)",
)  # fmt: skip
DOWNLOAD_FORMAT = ParamSpec("format", "Format", "choice", "jsonl", choices=tuple(DOWNLOADS))


@dataclass(frozen=True, kw_only=True)
class InferenceRequest(Values):
    """A batch-inference run over a dataset, or (with a file) over an upload."""

    dataset_id: int | None = param(INFERENCE_DATASET)
    model_id: int | None = param(INFERENCE_MODEL)


@dataclass(frozen=True, kw_only=True)
class ResultsQuery(Values):
    format: str = param(DOWNLOAD_FORMAT)


def create_run(
    session: Session,
    request: InferenceRequest,
    upload: tuple[str, bytes] | None,
    user: User | None,
    *,
    key: bytes | None = None,
) -> InferenceRun:
    """A run as a person asked for it: over ``upload`` (filename, bytes) when given, else the
    dataset. ``key`` (PII_KEY) serves the hash and encrypt operators of an upload's policy.
    Runs past their retention are purged first.

    Raises:
        InferenceError: neither a dataset nor a file, no model to use. DatasetNotFound, DatasetError.
        PolicyError, PrivacyUndecided: the upload cannot be de-identified by the model's dataset's policy.
    """
    purge_expired(session)
    if upload is not None:
        return create_for_upload(session, upload[0], upload[1], request.model_id, user, key=key)
    if request.dataset_id is None:
        raise InferenceError("choose a dataset (dataset_id), or upload a file")
    dataset = get_dataset(session, request.dataset_id)
    return create_for_dataset(session, dataset, request.model_id, user)


def run_page(session: Session, query: PageQuery) -> Page[InferenceRun]:
    return paginate(session, select(InferenceRun).order_by(InferenceRun.id.desc()), query.page, query.limit, count=True)


def resolve_model(session: Session, dataset_id: int | None, model_id: int | None) -> ModelVersion:
    """The named model version, or the dataset's promoted one."""
    if model_id is not None:
        model = session.get(ModelVersion, model_id)
        if model is None:
            raise InferenceNotFound(f"no model version {model_id}")
        if model.status == ModelStatus.BASELINE:
            raise InferenceError(f"model {model.version} is the LLM baseline, not a classifier: name a trained model")
        return model
    if dataset_id is None:
        raise InferenceError("name a model version (model_id), or a dataset whose promoted model to use")
    from include.services.registry import promoted_model

    promoted = promoted_model(session, dataset_id)
    if promoted is None:
        raise InferenceError(f"dataset {dataset_id} has no promoted model yet: train one, or name a model_id")
    return promoted


def create_for_dataset(session: Session, dataset: Dataset, model_id: int | None, user: User | None) -> InferenceRun:
    model = resolve_model(session, dataset.id, model_id)
    run = InferenceRun(model_id=model.id, dataset_id=dataset.id, source="dataset", created_by=user.id if user else None)
    session.add(run)
    session.flush()
    return run


def create_for_upload(
    session: Session,
    filename: str,
    data: bytes,
    model_id: int | None,
    user: User | None,
    *,
    text_column: str = "text",
    key: bytes | None = None,
) -> InferenceRun:
    """A run over an uploaded .csv or .jsonl file (its ``text`` column); the texts wait as inputs,
    de-identified first by the policy of the model's dataset (what it was trained on is what it
    may see), so no original is stored, embedded or written into the downloads.

    Raises:
        InferenceError: no model named (an upload has no dataset to take the promoted one from).
        DatasetError: the file cannot be read (the message names the line).
        PolicyError, PrivacyUndecided: see :func:`_deidentified_inputs`.
    """
    if model_id is None:
        raise InferenceError("an uploaded file needs a model_id (the model version to run)")
    model = resolve_model(session, None, model_id)
    texts = [text for text, _ in parse_upload(data, filename, text_column=text_column, max_rows=MAX_UPLOAD_ROWS).rows]
    texts = _deidentified_inputs(session, get_dataset(session, model.dataset_id), texts, key)
    run = InferenceRun(
        model_id=model.id,
        dataset_id=None,
        source="upload",
        filename=filename[:255],
        created_by=user.id if user else None,
    )
    session.add(run)
    session.flush()
    raw = _driver(session)
    with raw.cursor() as cur, cur.copy("COPY inference_inputs (run_id, row, text, text_hash) FROM STDIN") as copy:
        for number, text in enumerate(texts, start=1):
            copy.write_row((run.id, number, text, text_hash(text)))
    run.rows = len(texts)
    session.flush()
    return run


def _deidentified_inputs(session: Session, dataset: Dataset, texts: list[str], key: bytes | None) -> list[str]:
    """The texts as the dataset's policy leaves them (the mapping is not kept: an inference
    input is never revealed). Fails closed: no decision, or a policy that needs the LLM
    recognizer (an upload is de-identified in the request, not sent to an LLM from there).

    Raises:
        PrivacyUndecided: the dataset has no privacy decision.
        PolicyError: the policy needs the LLM recognizer or a key that is not set.
    """
    from include.pii.engine import PiiError, deidentify
    from include.services import pii

    pii.require_decided(dataset, "batch inference on uploaded texts")
    if dataset.pii_policy_id is None:
        return texts  # on record: the dataset holds no personal data
    policy = pii.get_policy(session, dataset.pii_policy_id)
    if policy.use_llm:
        raise pii.PolicyError(
            f"the model's dataset is de-identified with the LLM recognizer ({policy.name!r}): add these texts to "
            "a dataset, whose deidentify step runs it, and run inference over that dataset"
        )
    try:
        results = deidentify(texts, policy.entities, key=key, locale=policy.locale)
    except PiiError as exc:
        raise pii.PolicyError(str(exc)) from None
    return [r.text for r in results]


def purge_expired(session: Session, *, now: datetime | None = None) -> int:
    """Delete the inputs and results of runs that ended more than :data:`RETENTION` ago; the
    run stays on record as ``purged``. Returns how many runs were purged."""
    cutoff = (now or datetime.now(UTC)) - RETENTION
    ids = list(
        session.scalars(
            select(InferenceRun.id).where(
                InferenceRun.status.in_(("done", "failed")), InferenceRun.finished_at < cutoff
            )
        )
    )
    if ids:
        session.execute(delete(InferenceInput).where(InferenceInput.run_id.in_(ids)))
        session.execute(delete(InferenceResult).where(InferenceResult.run_id.in_(ids)))
        session.execute(update(InferenceRun).where(InferenceRun.id.in_(ids)).values(status="purged"))
    return len(ids)


def delete_run(session: Session, run: InferenceRun) -> None:
    """Delete a run with its inputs and results (not while it runs: its task would write on).

    Raises:
        Conflict: the run is queued or running.
    """
    if run.status in ("queued", "running"):
        raise Conflict(f"run {run.id} is {run.status}: delete it once it has ended")
    session.delete(run)
    session.flush()


def _driver(session: Session) -> Any:
    """The psycopg connection under the session, for COPY (the session's transaction)."""
    raw = session.connection().connection.driver_connection
    if raw is None:
        raise RuntimeError("no database connection")
    return raw


def get_run(session: Session, run_id: int) -> InferenceRun:
    run = session.get(InferenceRun, run_id)
    if run is None:
        raise InferenceNotFound(f"no batch-inference run {run_id}")
    return run


def list_runs(session: Session, limit: int = 50) -> list[InferenceRun]:
    return list(session.scalars(select(InferenceRun).order_by(InferenceRun.id.desc()).limit(limit)))


def done_rows(session: Session, run_id: int) -> tuple[int, int]:
    """(results written, highest row written): where a retried run resumes."""
    count, top = session.execute(
        select(func.count(), func.coalesce(func.max(InferenceResult.row), 0)).where(InferenceResult.run_id == run_id)
    ).one()
    return int(count), int(top)


def count_items(session: Session, dataset_id: int) -> int:
    from include.db.models import Item

    return int(session.scalar(select(func.count(Item.id)).where(Item.dataset_id == dataset_id)) or 0)


_COPY_HEADER_LEN = 19  # PGCOPY\n\377\r\n\0, flags, header extension length


def dataset_batch(
    session: Session, dataset_id: int, embedding_model_id: int, *, after: int, limit: int, dimension: int
) -> tuple[list[int], list[str], np.ndarray]:
    """(item ids, text hashes, vectors) of the dataset's next items that have an embedding.

    Read as one binary COPY and parsed with numpy: every row has the same size (an int8 id, a
    64-character hash, a vector of ``dimension``), so the stream is a structured array. Decoding
    row by row through the driver is about eight times slower (bench/inference.py).
    """
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("id_len", ">i4"),
            ("id", ">i8"),
            ("hash_len", ">i4"),
            ("hash", "S64"),
            ("vec_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("vec", ">f4", (dimension,)),
        ]
    )
    statement = (
        "COPY (SELECT i.id::int8, i.text_hash::text, e.embedding FROM items i "
        "JOIN embeddings e ON e.model_id = %s AND e.text_hash = i.text_hash "
        "WHERE i.dataset_id = %s AND i.id > %s AND i.pii_status <> 'pending' "  # fail closed
        "ORDER BY i.id LIMIT %s) TO STDOUT (FORMAT binary)"
    )
    with _driver(session).cursor() as cur, cur.copy(statement, (embedding_model_id, dataset_id, after, limit)) as copy:
        data = b"".join(bytes(block) for block in copy)
    body = data[_COPY_HEADER_LEN:-2]  # without the header and the -1 trailer
    if not body:
        return [], [], np.zeros((0, dimension), dtype=np.float32)
    if len(body) % row.itemsize:
        raise InferenceError(f"stored vectors are not {dimension}-dimensional: re-embed with the model's encoder")
    rows = np.frombuffer(body, dtype=row)
    if (rows["dim"] != dimension).any() or (rows["hash_len"] != 64).any():
        raise InferenceError(f"stored vectors are not {dimension}-dimensional: re-embed with the model's encoder")
    return (
        rows["id"].astype(np.int64).tolist(),
        [h.decode("ascii") for h in rows["hash"]],
        rows["vec"].astype(np.float32),
    )


def upload_batch(session: Session, run_id: int, *, after: int, limit: int) -> list[tuple[int, str, str]]:
    """(row, text hash, text) of an uploaded run's next inputs."""
    return [
        (int(r), str(h), str(t))
        for r, h, t in session.execute(
            select(InferenceInput.row, InferenceInput.text_hash, InferenceInput.text)
            .where(InferenceInput.run_id == run_id, InferenceInput.row > after)
            .order_by(InferenceInput.row)
            .limit(limit)
        ).tuples()
    ]


def results_payload(
    run_id: int, rows: Sequence[int], hashes: Sequence[str], probs: np.ndarray, labels: list[str]
) -> bytes:
    """A binary COPY stream of result rows, built with numpy one predicted label at a time.

    Within one label every row has the same size (the label is the only text of varying length),
    so each group is a structured array in PostgreSQL's wire format; the groups are concatenated
    (row order does not matter to a table). ``probs`` goes as a float8[] of every class.
    """
    unc = uncertainty(probs)
    best = probs.argmax(axis=1)
    k = probs.shape[1]
    ids = np.asarray(rows, dtype=np.int64)
    encoded = np.asarray([h.encode("ascii") for h in hashes], dtype="S64")
    parts = [b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")]
    for index, label in enumerate(labels):
        chosen = np.flatnonzero(best == index)
        if not len(chosen):
            continue
        name = label.encode("utf-8")
        row = np.dtype(
            [
                ("fields", ">i2"),
                ("run_len", ">i4"),
                ("run", ">i4"),
                ("row_len", ">i4"),
                ("row", ">i8"),
                ("hash_len", ">i4"),
                ("hash", "S64"),
                ("label_len", ">i4"),
                ("label", f"S{len(name)}"),
                ("conf_len", ">i4"),
                ("conf", ">f8"),
                ("unc_len", ">i4"),
                ("unc", ">f8"),
                ("arr_len", ">i4"),
                ("ndim", ">i4"),
                ("has_null", ">i4"),
                ("elem_oid", ">i4"),
                ("size", ">i4"),
                ("lower", ">i4"),
                ("probs", [("len", ">i4"), ("value", ">f8")], (k,)),
            ]
        )
        group = np.empty(len(chosen), dtype=row)
        group["fields"] = 7
        group["run_len"], group["run"] = 4, run_id
        group["row_len"], group["row"] = 8, ids[chosen]
        group["hash_len"], group["hash"] = 64, encoded[chosen]
        group["label_len"], group["label"] = len(name), name
        group["conf_len"], group["conf"] = 8, probs[chosen, index]
        group["unc_len"], group["unc"] = 8, unc[chosen]
        group["arr_len"] = 20 + 12 * k
        group["ndim"], group["has_null"], group["elem_oid"], group["size"], group["lower"] = 1, 0, 701, k, 1
        group["probs"]["len"] = 8
        group["probs"]["value"] = probs[chosen]
        parts.append(group.tobytes())
    parts.append((-1).to_bytes(2, "big", signed=True))
    return b"".join(parts)


def write_results(
    session: Session, run_id: int, rows: Sequence[int], hashes: Sequence[str], probs: np.ndarray, labels: list[str]
) -> None:
    """One binary COPY per batch: the label, its probability, the uncertainty (margin) and every probability."""
    if not len(rows):
        return
    columns = "run_id, row, text_hash, label, confidence, uncertainty, probs"
    with (
        _driver(session).cursor() as cur,
        cur.copy(f"COPY inference_results ({columns}) FROM STDIN (FORMAT binary)") as copy,
    ):
        copy.write(results_payload(run_id, rows, hashes, np.asarray(probs, dtype=np.float64), labels))


def finish(session: Session, run: InferenceRun, status: str, message: str) -> None:
    run.status, run.message, run.finished_at = status, message[:2000], datetime.now(UTC)
    run.rows = done_rows(session, run.id)[0]
    session.flush()


def label_counts(session: Session, run_id: int) -> dict[str, int]:
    return {
        str(label): int(n)
        for label, n in session.execute(
            select(InferenceResult.label, func.count())
            .where(InferenceResult.run_id == run_id)
            .group_by(InferenceResult.label)
        ).tuples()
    }


_RESULT_ROWS = {
    "dataset": """
        SELECT r.row, i.text, r.label, r.confidence, r.uncertainty, r.probs
        FROM inference_results r JOIN items i ON i.id = r.row
        WHERE r.run_id = :run_id ORDER BY r.row
    """,
    "upload": """
        SELECT r.row, x.text, r.label, r.confidence, r.uncertainty, r.probs
        FROM inference_results r JOIN inference_inputs x ON x.run_id = r.run_id AND x.row = r.row
        WHERE r.run_id = :run_id ORDER BY r.row
    """,
}


def result_rows(session: Session, run: InferenceRun) -> Iterator[tuple[Any, ...]]:
    result = (
        session.connection()
        .execution_options(stream_results=True, yield_per=5000)
        .execute(sql_text(_RESULT_ROWS[run.source]), {"run_id": run.id})
    )
    yield from result.tuples()


def download_chunks(session: Session, run: InferenceRun, fmt: str, labels: list[str]) -> Iterator[bytes]:
    """The run's predictions as CSV or JSONL, streamed (``item_id`` or ``row``, text, label,
    confidence, uncertainty, one probability column per label)."""
    if fmt not in DOWNLOADS:
        raise InferenceError(f"download as one of {', '.join(DOWNLOADS)}")
    key = "item_id" if run.source == "dataset" else "row"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        buffer.write("\ufeff")
        writer.writerow([key, "text", "label", "confidence", "uncertainty", *(f"p_{label}" for label in labels)])
        for n, (row, text, label, confidence, unc, probs) in enumerate(result_rows(session, run), start=1):
            writer.writerow([row, neutralise(text), neutralise(label), confidence, unc, *probs])
            if n % CHUNK == 0:
                yield buffer.getvalue().encode("utf-8")
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode("utf-8")
        return
    lines: list[str] = []
    for row, text, label, confidence, unc, probs in result_rows(session, run):
        record = {key: row, "text": text, "label": label, "confidence": confidence, "uncertainty": unc}
        record["probs"] = dict(zip(labels, probs, strict=False))
        lines.append(json.dumps(record, ensure_ascii=False))
        if len(lines) == CHUNK:
            yield ("\n".join(lines) + "\n").encode("utf-8")
            lines = []
    if lines:
        yield ("\n".join(lines) + "\n").encode("utf-8")
