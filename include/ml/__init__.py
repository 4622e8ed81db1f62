"""The ML half: embeddings in pgvector, classifier heads, pre-labeling and uncertainty scoring.

torch and sentence-transformers are imported inside functions, never at module import, so DAG
files and the web app stay light.
"""
