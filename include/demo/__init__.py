"""Demo data: a deterministic labeled text dataset for the demo and the active-learning benchmark."""
