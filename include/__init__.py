"""Shared library code for LabelOps: used by the DAGs, the web app and the runtime."""
