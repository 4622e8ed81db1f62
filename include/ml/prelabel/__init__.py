"""Pre-labeling backends: the promoted classifier, embedding similarity and LLMs."""
