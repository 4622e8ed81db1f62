"""The sentence encoder on ONNX Runtime (CPU): the torch vectors (fp32), or about 2.2x torch (int8).

Why this is written here: sentence-transformers' own ``backend="onnx"`` needs optimum-onnx, which
pins transformers<4.58 while the platform runs transformers 5. So the model's transformer is
exported once with ``torch.onnx`` (the TorchScript exporter: no onnxscript needed) into the
platform's cache, keyed by a hash of its weights (a fine-tuned encoder gets its own file), and its
output is pooled and normalised here exactly as the model's ``Pooling`` and ``Normalize``
modules do. Every export is checked against the torch vectors on probe sentences before it is
used; a model of another shape (not Transformer + mean/CLS pooling) stays on torch.

Measured on 2 cores (bench/embed_runtime.py, 3,000 texts per set): fp32 gives the torch vectors
(cosine 1.0000) at 1.02-1.10x torch's speed, since torch 2.13's CPU kernels are as good; ONNX
Runtime's transformer fusions find no attention to fuse in this export. ``int8`` quantises the
MatMul weights per channel (``onnxruntime.quantization``; the embedding tables stay fp32): 2.0-2.4x
torch, with cosine to the torch vectors 0.990-0.992 on average but 0.94 at worst. Vectors of one
model name must stay comparable (near-duplicate thresholds, reused vectors), so int8 is a choice
made for a whole installation (``EMBED_RUNTIME=onnx-int8``), never the automatic one.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Probe sentences for the export check (mixed lengths, a non-Latin script, an empty-ish text).
PROBES = (
    "the screen cracked after two days",
    "Great value, works as described and the battery lasts all week long, would buy again.",
    "屏幕碎了，客服也不回复",
    "ok",
)
MIN_COSINE = {False: 0.9999, True: 0.95}  # fp32 must match; int8 may drift a little
EXPORT_MIN = 2000  # texts in one call that pay for a first export under "auto" (torch: ~13 s on 2 cores)
_SESSIONS: dict[str, OnnxEncoder] = {}
_LOCK = threading.Lock()


def available() -> bool:
    """Both onnxruntime (to run) and onnx (to export) are installed."""
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


class Unsupported(ValueError):
    """This model cannot run on ONNX Runtime here (its shape, or its export did not match torch)."""


def _pooling(model: Any) -> str:
    """``mean`` or ``cls``: how the model pools token vectors (other shapes stay on torch)."""
    names = [type(m).__name__ for m in model]
    if len(model) < 2 or names[0] != "Transformer" or names[1] != "Pooling" or set(names[2:]) - {"Normalize"}:
        raise Unsupported(f"modules {names}")
    config = model[1].get_config_dict()
    mode = config.get("pooling_mode")  # sentence-transformers 6; older ones set pooling_mode_* flags
    if mode is None:
        flags = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
        mode = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(flags[0]) if flags else None
        mode = mode if len(flags) == 1 else None
    if mode not in ("mean", "cls"):
        raise Unsupported(f"pooling {mode or config}")
    return str(mode)


@dataclass
class Wanted:
    """An embedder that should run on ONNX Runtime (``runtime``), its export cached under ``cache``."""

    runtime: str
    cache: Path
    key: str | None = None

    def exported(self, model: Any) -> bool:
        self.key = self.key or weights_key(model)
        return (self.cache / self.key / "inputs.txt").exists()


def weights_key(model: Any) -> str:
    """A hash of the transformer's weights: one export per distinct model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model[0].auto_model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:24]


def _export(model: Any, path: Path) -> list[str]:
    """The transformer to ONNX at ``path`` (its token-vector output); returns the input names."""
    import torch

    transformer = model[0].auto_model
    sample = model[0].tokenizer(list(PROBES[:2]), padding=True, truncation=True, return_tensors="pt")
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = transformer

        def forward(self, *inputs: Any) -> Any:
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "token_vectors"]}
    with torch.no_grad():
        torch.onnx.export(
            TokenVectors().eval(),
            tuple(sample[n] for n in names),
            str(path),
            input_names=names,
            output_names=["token_vectors"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return names


def _quantize(source: Path, target: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(target),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        extra_options={"DefaultTensorType": 1},  # FLOAT, for MatMul outputs shape inference leaves untyped
    )


def _build_files(model: Any, folder: Path) -> None:
    """``model.onnx`` and ``inputs.txt`` in ``folder``, written atomically."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".export-"))
    try:
        names = _export(model, staging / "model.onnx")
        (staging / "inputs.txt").write_text("\n".join(names))
        staging.rename(folder)  # a concurrent worker either wins or finds it complete
    except OSError:
        if not (folder / "inputs.txt").exists():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _model_file(model: Any, folder: Path, quantized: bool) -> Path:
    """The fp32 export, or its int8 quantisation (made on first request, atomically)."""
    if not (folder / "inputs.txt").exists():
        log.info("exporting the sentence encoder to ONNX in %s", folder)
        _build_files(model, folder)
    if not quantized:
        return folder / "model.onnx"
    target = folder / "model.int8.onnx"
    if not target.exists():
        staging = folder / f".int8-{os.getpid()}-{threading.get_ident()}.onnx"
        _quantize(folder / "model.onnx", staging)
        staging.replace(target)
    return target


@dataclass
class OnnxEncoder:
    """One model's ONNX session with its tokenizer and pooling: ``encode(texts) -> unit vectors``."""

    session: Any
    tokenizer: Any
    inputs: list[str]
    pooling: str
    max_length: int
    lower_case: bool
    quantized: bool

    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        """Unit vectors, batches of similar length (as sentence-transformers sorts them)."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            batch = [texts[i].lower() if self.lower_case else texts[i] for i in rows]
            encoded = self.tokenizer(
                batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
            )
            feeds = {n: np.asarray(encoded[n], dtype=np.int64) for n in self.inputs}
            tokens = self.session.run(None, feeds)[0]
            if self.pooling == "cls":
                vectors = tokens[:, 0]
            else:
                mask = feeds["attention_mask"][..., None].astype(np.float32)
                vectors = (tokens * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads and threads.isdigit():
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def encoder_for(model: Any, cache: Path, *, quantized: bool = False, key: str | None = None) -> OnnxEncoder:
    """The ONNX encoder of a loaded SentenceTransformer, exported into ``cache`` on first use.

    Raises:
        Unsupported: the model's shape has no ONNX path here, or its export does not give its vectors.
    """
    pooling = _pooling(model)
    weights = key or weights_key(model)
    key = f"{weights}-{'int8' if quantized else 'fp32'}"
    with _LOCK:
        if key in _SESSIONS:
            return _SESSIONS[key]
        folder = cache / weights
        encoder = OnnxEncoder(
            session=_session(_model_file(model, folder, quantized)),
            tokenizer=model[0].tokenizer,
            inputs=(folder / "inputs.txt").read_text().split(),
            pooling=pooling,
            max_length=int(model[0].max_seq_length or 512),
            lower_case=bool(getattr(model[0], "do_lower_case", False)),
            quantized=quantized,
        )
        reference = model.encode(list(PROBES), normalize_embeddings=True, convert_to_numpy=True)
        cosine = float((encoder.encode(list(PROBES)) * reference).sum(axis=1).min())
        if cosine < MIN_COSINE[quantized]:
            raise Unsupported(f"the ONNX export gives other vectors than torch (cosine {cosine:.4f})")
        _SESSIONS[key] = encoder
        return encoder
