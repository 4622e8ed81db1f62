"""The classifier head (logistic regression or a small MLP) and its artifact format."""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("logistic", "mlp")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class HeadConfig:
    kind: str
    input_dim: int
    num_classes: int
    hidden_dim: int = 256
    dropout: float = 0.2


def build_head(config: HeadConfig) -> Any:
    """A torch module mapping embeddings to class logits."""
    from torch import nn

    if config.kind == "logistic":
        return nn.Linear(config.input_dim, config.num_classes)
    if config.kind == "mlp":
        return nn.Sequential(
            nn.Linear(config.input_dim, config.hidden_dim),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden_dim, config.num_classes),
        )
    raise ValueError(f"model kind must be one of {KINDS}, not {config.kind!r}")


@dataclass
class TrainedHead:
    """A trained head with what it needs to predict: its labels, embedding model and temperature.

    ``temperature`` (fitted on the validation split, include.ml.calibration) divides the logits,
    so the probabilities that order the uncertainty queue and show as "suggestion %" are calibrated.
    """

    config: HeadConfig
    labels: list[str]
    embedding_model: str
    module: Any
    temperature: float = 1.0

    def logits(self, x: np.ndarray, batch_size: int = 65536, device: str | None = None) -> np.ndarray:
        """Raw class scores for embeddings ``x`` (n, d), in batches (no gradients)."""
        import torch

        dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        module = self.module.to(dev).eval()
        out = np.empty((len(x), len(self.labels)), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                chunk = torch.from_numpy(np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)).to(dev)
                out[start : start + len(chunk)] = module(chunk).float().cpu().numpy()
        return out

    def predict_proba(self, x: np.ndarray, batch_size: int = 65536, device: str | None = None) -> np.ndarray:
        """Calibrated class probabilities for embeddings ``x`` (n, d)."""
        return softmax(self.logits(x, batch_size, device) / self.temperature)

    def to_bytes(self) -> bytes:
        """Weights, config, labels, embedding model and temperature in one blob (stored in the
        registry row, so every worker reads the head from the database, no shared disk)."""
        import torch

        buffer = io.BytesIO()
        meta = {
            "config": asdict(self.config),
            "labels": self.labels,
            "embedding_model": self.embedding_model,
            "temperature": self.temperature,
        }
        torch.save({"state": self.module.cpu().state_dict(), "meta": meta}, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> TrainedHead:
        import torch

        saved = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
        return cls._assemble(saved["meta"], saved["state"])

    @classmethod
    def _assemble(cls, meta: dict[str, Any], state: Any) -> TrainedHead:
        config = HeadConfig(**meta["config"])
        module = build_head(config)
        module.load_state_dict(state)
        module.eval()
        return cls(
            config=config,
            labels=list(meta["labels"]),
            embedding_model=meta["embedding_model"],
            module=module,
            temperature=float(meta.get("temperature", 1.0)),
        )

    @classmethod
    def load(cls, weights: Path) -> TrainedHead:
        """A head saved as files by an earlier version (``<path>.pt`` and ``<path>.json``)."""
        import torch

        weights = Path(weights)
        meta = json.loads(weights.with_suffix(".json").read_text())
        return cls._assemble(meta, torch.load(weights, map_location="cpu", weights_only=True))
