"""Embeddings in PostgreSQL + pgvector, keyed by (model, text hash).

One ``embeddings`` table holds every model's vectors (the column has no fixed dimension);
each model gets a partial HNSW index on ``embedding::vector(dim)`` limited to its rows, the
layout pgvector recommends for mixed dimensions. The index is created when the model is
registered: it depends on the model's id and dimension, so it cannot be a static migration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from include.db.models import EmbeddingBackend as BackendKind
from include.db.models import EmbeddingModel
from include.errors import Invalid


class EmbeddingStoreError(Invalid):
    """A vector that does not fit its model (dimension), or a model registered twice differently."""


def index_name(model_id: int) -> str:
    return f"ix_embeddings_hnsw_model_{int(model_id)}"


def register_model(session: Session, name: str, kind: str, model: str, dimension: int) -> EmbeddingModel:
    """Get or create the model row (and its HNSW index). A known name must keep its dimension."""
    existing = session.scalar(select(EmbeddingModel).where(EmbeddingModel.name == name))
    if existing is not None:
        if existing.dimension != dimension:
            raise EmbeddingStoreError(
                f"embedding model {name!r} is registered with {existing.dimension} dimensions, got {dimension}"
            )
        return existing
    if not 0 < dimension <= 2000:
        raise EmbeddingStoreError(f"pgvector's HNSW index supports 1-2000 dimensions, not {dimension}")
    row = EmbeddingModel(name=name, backend=BackendKind(kind), model=model, dimension=dimension)
    session.add(row)
    session.flush()
    # An index with this id's name can only be left over from a deleted model (or a restored
    # database whose ids restarted); it may have another dimension, so it goes first.
    drop_index(session, row.id)
    ensure_index(session, row)
    return row


def ensure_index(session: Session, model: EmbeddingModel) -> None:
    session.execute(
        text(
            f"CREATE INDEX IF NOT EXISTS {index_name(model.id)} ON embeddings "
            f"USING hnsw ((embedding::vector({int(model.dimension)})) vector_cosine_ops) "
            f"WHERE model_id = {int(model.id)}"
        )
    )


def index_exists(session: Session, model_id: int) -> bool:
    return bool(session.scalar(text("SELECT to_regclass(:name) IS NOT NULL"), {"name": index_name(model_id)}))


def drop_index(session: Session, model_id: int) -> None:
    """For bulk loads: building HNSW after the load is about 4x cheaper than maintaining it per row."""
    session.execute(text(f"DROP INDEX IF EXISTS {index_name(model_id)}"))


def count_vectors(session: Session, model_id: int) -> int:
    return int(session.scalar(text("SELECT count(*) FROM embeddings WHERE model_id = :m"), {"m": model_id}) or 0)


def get_model(session: Session, name: str) -> EmbeddingModel | None:
    return session.scalar(select(EmbeddingModel).where(EmbeddingModel.name == name))


def missing_texts(
    session: Session, model_id: int, dataset_id: int, *, after_hash: str = "", limit: int = 1000
) -> list[tuple[str, str]]:
    """(text_hash, text) of the dataset's texts this model has not embedded, by hash (keyset)."""
    rows = session.execute(
        text(
            """
            SELECT i.text_hash, i.text FROM items i
            WHERE i.dataset_id = :dataset_id AND i.text_hash > :after AND i.pii_status <> 'pending'
              AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model_id = :model_id AND e.text_hash = i.text_hash)
            ORDER BY i.text_hash
            LIMIT :limit
            """
        ),
        {"dataset_id": dataset_id, "after": after_hash, "model_id": model_id, "limit": limit},
    ).tuples()
    return [(str(h), str(t)) for h, t in rows]


def count_missing(session: Session, model_id: int, dataset_id: int) -> int:
    return int(
        session.scalar(
            text(
                """
                SELECT count(*) FROM items i WHERE i.dataset_id = :dataset_id
                  AND NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.model_id = :model_id AND e.text_hash = i.text_hash)
                """
            ),
            {"dataset_id": dataset_id, "model_id": model_id},
        )
        or 0
    )


def _raw_connection(session: Session):
    """The psycopg 3 connection under the session, with pgvector's types registered."""
    from pgvector.psycopg import register_vector

    raw = session.connection().connection.driver_connection
    assert raw is not None
    if not getattr(raw, "_labelops_vector", False):
        register_vector(raw)
        raw._labelops_vector = True
    return raw


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + (0).to_bytes(4, "big") + (0).to_bytes(4, "big")
_COPY_TRAILER = (-1).to_bytes(2, "big", signed=True)


def copy_payload(hashes: Sequence[str], vectors: np.ndarray) -> bytes:
    """A whole binary COPY stream of (text_hash, vector) rows, built with numpy in one go.

    Every row has the same size (a sha256 hex digest and a fixed dimension), so the rows are a
    numpy structured array in PostgreSQL's wire format (big-endian; pgvector's binary ``vector`` is
    int16 dim, int16 unused, float4[dim]). Writing row by row from Python holds the GIL for every
    row, which slows the encoder running beside it.
    """
    dim = int(vectors.shape[1])
    encoded = np.asarray([h.encode("ascii") for h in hashes], dtype="S64")
    if any(len(h) != 64 for h in hashes):
        raise EmbeddingStoreError("text hashes must be 64-character sha256 hex digests")
    row = np.dtype(
        [
            ("fields", ">i2"),
            ("hash_len", ">i4"),
            ("hash", "S64"),
            ("vec_len", ">i4"),
            ("dim", ">i2"),
            ("unused", ">i2"),
            ("vec", ">f4", (dim,)),
        ]
    )
    rows = np.empty(len(hashes), dtype=row)
    rows["fields"] = 2
    rows["hash_len"] = 64
    rows["hash"] = encoded
    rows["vec_len"] = 4 + 4 * dim
    rows["dim"] = dim
    rows["unused"] = 0
    rows["vec"] = vectors
    return _COPY_HEADER + rows.tobytes() + _COPY_TRAILER


def write_embeddings(session: Session, model_id: int, hashes: Sequence[str], vectors: np.ndarray) -> int:
    """Bulk-write vectors: binary COPY into a temp table, then one INSERT .. ON CONFLICT DO NOTHING
    (a text embedded concurrently by another run is simply kept). Returns rows inserted."""
    if len(hashes) != len(vectors):
        raise EmbeddingStoreError(f"{len(hashes)} hashes but {len(vectors)} vectors")
    if not len(hashes):
        return 0
    conn = _raw_connection(session)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS embeddings_load (text_hash varchar(64), embedding vector) "
            "ON COMMIT DELETE ROWS"
        )
        cur.execute("TRUNCATE embeddings_load")
        with cur.copy("COPY embeddings_load (text_hash, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(copy_payload(hashes, vectors))
        cur.execute(
            "INSERT INTO embeddings (model_id, text_hash, embedding) "
            "SELECT %s, text_hash, embedding FROM embeddings_load "
            "ON CONFLICT ON CONSTRAINT uq_embeddings_model_text_hash DO NOTHING",
            (model_id,),
        )
        return int(cur.rowcount or 0)


def load_vectors(session: Session, model_id: int, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    """Vectors of these text hashes (missing ones are absent from the result)."""
    if not hashes:
        return {}
    conn = _raw_connection(session)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT text_hash, embedding FROM embeddings WHERE model_id = %s AND text_hash = ANY(%s)",
            (model_id, list(hashes)),
        )
        return {str(h): _as_array(v) for h, v in cur.fetchall()}


def nearest_items(
    session: Session, model: EmbeddingModel, vector: np.ndarray, *, dataset_id: int, k: int = 10
) -> list[tuple[int, float]]:
    """(item id, cosine distance) of the dataset's items closest to ``vector`` (HNSW index)."""
    conn = _raw_connection(session)
    dim, mid = int(model.dimension), int(model.id)
    with conn.cursor() as cur:
        # Literal model id and dimension: the planner matches the partial expression index.
        cur.execute(
            f"""
            WITH near AS (
                SELECT text_hash, embedding::vector({dim}) <=> %s::vector({dim}) AS distance
                FROM embeddings WHERE model_id = {mid}
                ORDER BY embedding::vector({dim}) <=> %s::vector({dim}) LIMIT %s
            )
            SELECT i.id, near.distance FROM near JOIN items i ON i.text_hash = near.text_hash
            WHERE i.dataset_id = %s ORDER BY near.distance LIMIT %s
            """,
            (np.asarray(vector, dtype=np.float32), np.asarray(vector, dtype=np.float32), k * 4, dataset_id, k),
        )
        return [(int(i), float(d)) for i, d in cur.fetchall()]


def near_pairs(
    session: Session, model: EmbeddingModel, hashes: Sequence[str], *, min_similarity: float, k: int = 6
) -> list[tuple[str, str, float]]:
    """(hash, neighbour hash, cosine similarity) for the ``k`` nearest neighbours of each text
    that are at least ``min_similarity`` alike, found through the model's HNSW index."""
    if not hashes:
        return []
    conn = _raw_connection(session)
    dim, mid = int(model.dimension), int(model.id)
    with conn.cursor() as cur:
        cur.execute(
            f"""
            SELECT q.text_hash, n.text_hash, 1 - n.distance
            FROM (SELECT text_hash, embedding::vector({dim}) AS v FROM embeddings
                  WHERE model_id = {mid} AND text_hash = ANY(%s)) q
            CROSS JOIN LATERAL (
                SELECT e.text_hash, e.embedding::vector({dim}) <=> q.v AS distance FROM embeddings e
                WHERE e.model_id = {mid} ORDER BY e.embedding::vector({dim}) <=> q.v LIMIT %s
            ) n
            WHERE n.text_hash <> q.text_hash AND n.distance <= %s
            """,
            (list(hashes), k, 1.0 - min_similarity),
        )
        return [(str(a), str(b), float(sim)) for a, b, sim in cur.fetchall()]


def _as_array(value: object) -> np.ndarray:
    """pgvector's loader returns numpy arrays or ``Vector`` objects depending on its version."""
    to_numpy = getattr(value, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy else value, dtype=np.float32)
