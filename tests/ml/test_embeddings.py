"""Embeddings into real PostgreSQL + pgvector: each text once per model, several models side by side."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select, text

from include.config import load_settings
from include.db.models import Embedding, EmbeddingModel, Job, JobStatus
from include.db.session import session_scope
from include.ml.embeddings.backends import OllamaEmbedder, OpenAIEmbedder, backend_for
from include.ml.http import BackendError
from include.pipelines.catalog import EmbedValues, IndexValues
from include.pipelines.embed_items import run_embed_items
from include.pipelines.runner import RunRef
from include.services.datasets import add_items, create_dataset, text_hash
from include.services.privacy import SYNTHETIC
from include.services.vectors import (
    EmbeddingStoreError,
    index_name,
    load_vectors,
    nearest_items,
    register_model,
    write_embeddings,
)


def make(db: str, name: str, texts: list[str]) -> int:
    with session_scope(db) as s:
        ds = create_dataset(s, name, labels=["OK", "NG"], privacy=SYNTHETIC)
        add_items(s, ds, [(t, {}) for t in texts])
        return ds.id


def test_local_model_embeds_each_text_once(db, minilm) -> None:
    a = make(db, "first", ["The kettle leaks when filled.", "The lamp works exactly as described.", "A third one."])
    b = make(db, "second", ["The kettle leaks when filled.", "Something new entirely."])
    result = run_embed_items(
        db, RunRef("embed_items", "r1"), EmbedValues(dataset_id=a, embedding_model=minilm.name), embedder=minilm
    )
    assert result["embedded"] == 3
    result = run_embed_items(
        db, RunRef("embed_items", "r2"), EmbedValues(dataset_id=b, embedding_model=minilm.name), embedder=minilm
    )
    assert result["embedded"] == 1  # the shared text is reused by hash
    again = run_embed_items(
        db, RunRef("embed_items", "r3"), EmbedValues(dataset_id=None, embedding_model=minilm.name), embedder=minilm
    )
    assert again["skipped"] is True
    with session_scope(db) as s:
        assert s.scalar(select(func.count(Embedding.id))) == 4
        model = s.scalar(select(EmbeddingModel))
        assert (model.name, model.dimension, model.backend.value) == ("all-MiniLM-L6-v2", 384, "sentence_transformers")
        vec = load_vectors(s, model.id, [text_hash("The kettle leaks when filled.")])
        (vector,) = vec.values()
        assert vector.shape == (384,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-4)
        statuses = [j.status for j in s.scalars(select(Job).order_by(Job.id))]
    assert statuses == [JobStatus.SUCCESS, JobStatus.SUCCESS, JobStatus.SKIPPED]


def test_models_of_different_dimensions_coexist(db, minilm, llm_server) -> None:
    ds = make(db, "multi", [f"note number {i} about a broken kettle" for i in range(20)])
    ollama = OllamaEmbedder(llm_server.url, "nomic-embed-text")
    openai = OpenAIEmbedder(f"{llm_server.url}/v1", "text-embedding-3-small", api_key="sk-test")
    for backend in (minilm, ollama, openai):
        run_embed_items(db, RunRef(), EmbedValues(dataset_id=ds, embedding_model=backend.name), embedder=backend)
    with session_scope(db) as s:
        dims = dict(s.execute(select(EmbeddingModel.name, EmbeddingModel.dimension)).tuples().all())
        assert dims == {"all-MiniLM-L6-v2": 384, "ollama:nomic-embed-text": 768, "openai:text-embedding-3-small": 256}
        per_model = dict(
            s.execute(select(Embedding.model_id, func.count()).group_by(Embedding.model_id)).tuples().all()
        )
        assert sorted(per_model.values()) == [20, 20, 20]
        indexes = {r[0] for r in s.execute(text("SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings'"))}
        for model in s.scalars(select(EmbeddingModel)):
            assert index_name(model.id) in indexes
    embed_calls = [b for p, b in llm_server.requests if p == "/api/embed"]
    assert embed_calls and all(b["model"] == "nomic-embed-text" and isinstance(b["input"], list) for b in embed_calls)
    assert sum(len(b["input"]) for b in embed_calls) == 21  # one dimension probe, then 20 texts in one batch


def test_nearest_neighbours_use_the_models_hnsw_index(db, minilm) -> None:
    texts = [f"The {p} has a cracked housing." for p in ("kettle", "lamp", "router")] + [
        f"The {p} works exactly as described." for p in ("kettle", "lamp", "router")
    ]
    ds = make(db, "near", texts)
    run_embed_items(db, RunRef(), EmbedValues(dataset_id=ds, embedding_model=minilm.name), embedder=minilm)
    with session_scope(db) as s:
        model = s.scalar(select(EmbeddingModel))
        query = minilm.embed(["The toaster has a cracked housing."])[0]
        hits = nearest_items(s, model, query, dataset_id=ds, k=3)
        texts_found = [s.execute(text("SELECT text FROM items WHERE id = :i"), {"i": i}).scalar() for i, _ in hits]
        assert all("cracked" in t for t in texts_found)
        # With a realistic number of rows the planner picks the model's HNSW index by itself.
        rng = np.random.default_rng(0)
        noise = rng.normal(size=(5000, 384)).astype(np.float32)
        write_embeddings(
            s, model.id, [f"{i:064d}" for i in range(5000)], noise / np.linalg.norm(noise, axis=1, keepdims=True)
        )
        s.execute(text("ANALYZE embeddings"))
        plan = "\n".join(
            r[0]
            for r in s.execute(
                text(
                    f"EXPLAIN SELECT text_hash FROM embeddings WHERE model_id = {model.id} "
                    f"ORDER BY embedding::vector(384) <=> CAST(:q AS vector(384)) LIMIT 3"
                ),
                {"q": str(query.tolist())},
            )
        )
    assert index_name(model.id) in plan


def test_dimension_is_fixed_per_model_and_bounded(session) -> None:
    register_model(session, "m", "ollama", "m", 768)
    with pytest.raises(EmbeddingStoreError, match="registered with 768 dimensions, got 384"):
        register_model(session, "m", "ollama", "m", 384)
    with pytest.raises(EmbeddingStoreError, match="1-2000 dimensions"):
        register_model(session, "huge", "openai", "huge", 3072)


def test_remote_backend_errors_are_clear(llm_server) -> None:
    backend = OllamaEmbedder(llm_server.url, "nomic-embed-text", timeout=0.5)
    llm_server.fail_status = 500
    with pytest.raises(BackendError, match="answered 500"):
        backend.embed(["x"])
    llm_server.fail_status = 0
    llm_server.delay = 1.5
    with pytest.raises(BackendError, match="did not answer within"):
        backend.embed(["x"])


def test_each_remote_backend_uses_its_own_timeout(llm_server) -> None:
    settings = load_settings(
        {"OPENAI_BASE_URL": f"{llm_server.url}/v1", "OPENAI_TIMEOUT": "0.5", "OLLAMA_BASE_URL": llm_server.url}
    )
    openai = backend_for("openai:text-embedding-3-small", settings)
    assert isinstance(openai, OpenAIEmbedder) and openai.timeout == 0.5
    ollama = backend_for("ollama:nomic-embed-text", settings)
    assert isinstance(ollama, OllamaEmbedder) and ollama.timeout == settings.ollama_timeout == 120.0
    llm_server.delay = 1.5
    with pytest.raises(BackendError, match="did not answer within"):
        openai.embed(["x"])


def test_bulk_loads_rebuild_the_index_after_loading(db, minilm, monkeypatch) -> None:
    from include.db.models import EmbeddingModel as Model
    from include.pipelines.embed_items import run_build_index
    from include.pipelines.training import embedding as pipeline
    from include.services.vectors import index_exists

    monkeypatch.setattr(pipeline, "BULK_LOAD_MIN", 5)
    first = make(db, "bulk-1", [f"bulk text {i} about a cracked lamp" for i in range(12)])
    result = run_embed_items(
        db, RunRef(), EmbedValues(dataset_id=first, embedding_model=minilm.name), embedder=minilm, defer_index=True
    )
    assert result["datasets"][0]["bulk_load"] and result["datasets"][0]["index_deferred"]
    with session_scope(db) as s:
        model_id = s.scalar(select(Model.id))
        assert not index_exists(s, model_id)  # left for the index task
    built = run_build_index(db, RunRef("embed_items", "idx"), IndexValues(embedding_model=minilm.name))
    assert built["vectors"] == 12
    with session_scope(db) as s:
        assert index_exists(s, model_id)
        assert s.scalar(select(Job.message).where(Job.run_id == "idx")).startswith("built the HNSW index of")
    again = run_build_index(db, RunRef(), IndexValues(embedding_model=minilm.name))
    assert again["skipped"] and "up to date" in again["reason"]

    second = make(db, "bulk-2", [f"another text {i} about a working kettle" for i in range(20)])
    inline = run_embed_items(db, RunRef(), EmbedValues(dataset_id=second, embedding_model=minilm.name), embedder=minilm)
    assert inline["datasets"][0]["bulk_load"] and inline["datasets"][0]["index_seconds"] is not None
    with session_scope(db) as s:
        assert index_exists(s, model_id)


def test_binary_copy_round_trips_vectors_exactly(session) -> None:
    model = register_model(session, "roundtrip", "ollama", "roundtrip", 7)
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 7)).astype(np.float32)
    hashes = [text_hash(f"text {i}") for i in range(50)]
    assert write_embeddings(session, model.id, hashes, vectors) == 50
    assert write_embeddings(session, model.id, hashes[:10], vectors[:10]) == 0  # already there: kept, not duplicated
    loaded = load_vectors(session, model.id, hashes)
    np.testing.assert_array_equal(np.stack([loaded[h] for h in hashes]), vectors)
    with pytest.raises(EmbeddingStoreError, match="64-character"):
        write_embeddings(session, model.id, ["short"], vectors[:1])
