"""The assets that make the loop live: what changed in Label Studio, and which datasets have
enough new labels. URIs only (no Airflow import): the web app posts events on them by URI, and
:mod:`include.pipelines.dag_defaults` builds the ``Asset`` objects the DAGs schedule on.

* ``ANNOTATIONS_CHANGED``: posted by the web app's webhook receiver through Airflow's REST API
  (extra: ``dataset_id``); schedules ``ls_export`` for that dataset.
* ``LABELS_READY``: emitted by ``ls_export``'s ``live_loop_due`` step when a dataset has
  ``retrain_after_labels`` new labels (extra: ``dataset_ids``); schedules the loop for them.
"""

from __future__ import annotations

ANNOTATIONS_CHANGED = "labelops://labelstudio/annotations"
LABELS_READY = "labelops://datasets/labels-ready"
