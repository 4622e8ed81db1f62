"""The sentence encoder on ONNX Runtime: the torch vectors, chosen by EMBED_RUNTIME, exported once."""

from __future__ import annotations

import numpy as np
import pytest

from include.config import SettingsError, load_settings
from include.demo.texts import generate_demo_texts
from include.ml.embeddings import onnx
from include.ml.embeddings.backends import SentenceTransformerEmbedder

TEXTS = [t.text for t in generate_demo_texts(300, seed=11, ambiguous=0.3)] + [
    "屏幕碎了，客服也不回复",
    "",
    "x " * 400,  # longer than the model's 256 tokens: truncated as torch truncates
]


@pytest.fixture(scope="module")
def torch_vectors(minilm) -> np.ndarray:
    return SentenceTransformerEmbedder(runtime="torch").embed(TEXTS)


def test_onnx_fp32_gives_the_torch_vectors(torch_vectors, tmp_path) -> None:
    embedder = SentenceTransformerEmbedder(runtime="onnx")
    assert embedder.runtime_in_use() == "onnx"
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == torch_vectors.shape and vectors.dtype == np.float32
    cosine = (vectors * torch_vectors).sum(axis=1)
    assert cosine.min() > 0.9999
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_int8_stays_close_and_is_only_chosen_by_name(torch_vectors) -> None:
    embedder = SentenceTransformerEmbedder(runtime="onnx-int8")
    assert embedder.runtime_in_use() == "onnx-int8"
    cosine = (embedder.embed(TEXTS) * torch_vectors).sum(axis=1)
    assert cosine.mean() > 0.98 and cosine.min() > 0.9
    assert SentenceTransformerEmbedder(runtime="auto").runtime_in_use() == "onnx"  # auto never quantises


def test_auto_exports_once_and_only_for_a_big_call(minilm, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LABELOPS_HOME", str(tmp_path))
    monkeypatch.setattr(onnx, "_SESSIONS", {})
    small = SentenceTransformerEmbedder()
    small.embed(TEXTS[:5])
    assert not list((tmp_path / "cache").glob("onnx/*/model.onnx"))  # a small call does not pay for an export
    assert isinstance(small._onnx, onnx.Wanted)
    big = SentenceTransformerEmbedder()
    big.embed(TEXTS * 7)  # >= EXPORT_MIN texts
    (exported,) = (tmp_path / "cache").glob("onnx/*/model.onnx")
    assert isinstance(big._onnx, onnx.OnnxEncoder)
    stamp = exported.stat().st_mtime_ns
    monkeypatch.setattr(onnx, "_SESSIONS", {})  # a new process: the file is reused, not exported again
    again = SentenceTransformerEmbedder()
    again.embed(TEXTS[:3])  # exported already: even a small call runs on it
    assert isinstance(again._onnx, onnx.OnnxEncoder)
    assert exported.stat().st_mtime_ns == stamp


def test_torch_when_asked(minilm, monkeypatch) -> None:
    monkeypatch.setenv("EMBED_RUNTIME", "torch")
    assert SentenceTransformerEmbedder().runtime_in_use() == "torch"
    monkeypatch.setenv("EMBED_RUNTIME", "tensorrt")
    with pytest.raises(SettingsError, match="EMBED_RUNTIME"):
        load_settings()


def test_a_model_of_another_shape_stays_on_torch_or_fails_by_name(minilm, monkeypatch) -> None:
    from sentence_transformers import SentenceTransformer, models

    base = minilm.sentence_transformer()
    max_pooled = SentenceTransformer(modules=[base[0], models.Pooling(384, pooling_mode="max")], device="cpu")
    with pytest.raises(onnx.Unsupported, match="pooling"):
        onnx.encoder_for(max_pooled, load_settings().home / "cache" / "onnx")
    with_dense = SentenceTransformer(modules=[base[0], base[1], models.Dense(384, 64)], device="cpu")
    with pytest.raises(onnx.Unsupported, match="Dense"):
        onnx.encoder_for(with_dense, load_settings().home / "cache" / "onnx")

    auto = SentenceTransformerEmbedder(runtime="auto")
    monkeypatch.setattr(auto, "_load", lambda: max_pooled)
    assert auto.runtime_in_use() == "torch"  # auto: a warning, and torch
    named = SentenceTransformerEmbedder(runtime="onnx")
    monkeypatch.setattr(named, "_load", lambda: max_pooled)
    with pytest.raises(ValueError, match="EMBED_RUNTIME=onnx cannot run"):
        named.embed(["a text"])
