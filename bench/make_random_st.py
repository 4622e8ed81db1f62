"""Build a sentence-transformers model directory with all-MiniLM-L6-v2's architecture and
tokenizer but random weights: for throughput measurements where the real weights cannot be
carried (compute per text is identical; the embeddings are meaningless).

    python bench/make_random_st.py <dir with config.json, tokenizer and modules.json> <out dir>
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main(src: str, out: str) -> None:
    from transformers import BertConfig, BertModel

    source, target = Path(src), Path(out)
    shutil.copytree(source, target, dirs_exist_ok=True)
    BertModel(BertConfig.from_pretrained(source)).save_pretrained(target)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
