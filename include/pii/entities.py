"""The names a de-identification policy is made of: entity types and operators.

Kept free of imports so that pages and services can list them without loading Presidio and
spaCy (about 400 MB per process).
"""

from __future__ import annotations

# The entity types a policy can name, in the order they are shown.
STRUCTURED = ("PHONE", "ID_NUMBER", "BANK_CARD", "EMAIL", "IP_ADDRESS", "URL", "PASSPORT")
# Names and addresses: offline for Chinese text (include.pii.zh), by the LLM recognizer for the rest.
NEEDS_MODEL = ("PERSON", "ADDRESS")
ENTITIES = STRUCTURED + NEEDS_MODEL
OPERATORS = ("placeholder", "mask", "hash", "encrypt")
