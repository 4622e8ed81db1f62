"""Classifier heads trained on embeddings: data loading, training, metrics, artifacts."""
