"""Units of work the DAG tasks call: each owns its transactions and records a job row."""
