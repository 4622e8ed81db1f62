"""Embedding backends (local sentence-transformers, OpenAI-compatible, Ollama) and the pgvector store."""
