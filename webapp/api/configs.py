"""API: a dataset's training configs (YAML), checked line by line."""

from __future__ import annotations

from typing import Any

from include.services import datasets, training_configs
from include.services.paging import PageQuery, page_of
from include.services.training_configs import ConfigBody
from webapp.api import api_user, paged, route
from webapp.extensions import db
from webapp.serializers import training_config_json

TAG = "configs"


@route(
    "GET", "/datasets/<id:dataset_id>/training_configs", tag=TAG, query=PageQuery, response="TrainingConfig",
    listing="configs", errors=(404,),
)  # fmt: skip
def list_training_configs(dataset_id: int, query: PageQuery) -> dict[str, Any]:
    """The dataset's training configs, by name."""
    datasets.get_dataset(db.session(), dataset_id)
    rows = training_configs.list_configs(db.session(), dataset_id)
    return paged("configs", page_of(rows, query.page, query.limit), training_config_json)


@route(
    "POST", "/datasets/<id:dataset_id>/training_configs", tag=TAG, body=ConfigBody, status=201, also=(200,),
    response="TrainingConfigEnvelope", errors=(404,),
)  # fmt: skip
def save_training_config(dataset_id: int, body: ConfigBody) -> Any:
    """``{"name": ..., "yaml": "..."}``: 201 when new, 200 when it replaced one of that name.

    A config that cannot be used is a 400 with ``problems`` (line, key, message) for each mistake.
    """
    dataset = datasets.get_dataset(db.session(), dataset_id)
    existed = training_configs.exists(db.session(), dataset_id, body.name)
    row = training_configs.save(db.session(), dataset, body.name, body.yaml, api_user())
    db.session.commit()
    return {"config": training_config_json(row)}, 200 if existed else 201
