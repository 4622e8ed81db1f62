"""Training configs from the dataset page and the API: saved when good, refused line by line when not."""

from __future__ import annotations

import io

from sqlalchemy import select

from include.db.models import TrainingConfigFile
from include.db.session import session_scope
from tests.webapp.conftest import api_token, login
from tests.webapp.factories import dataset_with_tasks

SWEEP = b"model_kind: mlp\nsweep:\n  params:\n    lr: [0.001, 0.01]\n"


def test_the_dataset_page_saves_a_config_and_explains_a_bad_one(db, client, users) -> None:
    ds, _ = dataset_with_tasks(db, "configs-page", 2)
    login(client, "admin")
    page = client.post(
        f"/admin/datasets/{ds}/training-configs",
        data={
            "name": "mlp-sweep",
            "file": (io.BytesIO(b"model_kind: mlp\nsweep:\n  params:\n    lr: [0.001, 0.01]\n"), "s.yaml"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Saved “mlp-sweep”, a sweep of 2 trials." in page
    assert 'data-config="mlp-sweep"' in page and "Run sweep" in page
    bad = client.post(
        f"/admin/datasets/{ds}/training-configs",
        data={"name": "typo", "yaml": "model_kind: mlp\nepocs: 30\n"},
        follow_redirects=True,
    )
    assert bad.status_code == 400 and "line 2, epocs: not a training parameter" in bad.get_data(as_text=True)
    with session_scope(db) as s:
        names = s.scalars(select(TrainingConfigFile.name).where(TrainingConfigFile.dataset_id == ds)).all()
        config_id = s.scalar(select(TrainingConfigFile.id).where(TrainingConfigFile.name == "mlp-sweep"))
    assert names == ["mlp-sweep"]
    text = client.get(f"/admin/datasets/{ds}/training-configs/{config_id}.yaml")
    assert text.status_code == 200 and text.get_data(as_text=True).startswith("model_kind: mlp")
    assert client.get(f"/admin/datasets/{ds + 1000}/training-configs/{config_id}.yaml").status_code == 404


def test_the_api_saves_replaces_and_refuses_with_problems(db, client, users) -> None:
    ds, _ = dataset_with_tasks(db, "configs-api", 2)
    headers = api_token(client, "admin")
    url = f"/api/v1/datasets/{ds}/training_configs"
    created = client.post(url, json={"name": "base", "yaml": "c: 0.5\n"}, headers=headers)
    replaced = client.post(url, json={"name": "base", "yaml": "c: 2\nseed: 3\n"}, headers=headers)
    refused = client.post(url, json={"name": "bad", "yaml": "c: -1\nsweep:\n  method: grid\n"}, headers=headers)
    listed = client.get(url, headers=headers).json["configs"]
    assert created.status_code == 201 and replaced.status_code == 200
    assert [c["values"] for c in listed] == [{"c": 2.0, "seed": 3}]
    assert refused.status_code == 400
    assert {(p["line"], p["key"]) for p in refused.json["problems"]} == {(1, "c"), (3, "sweep.params")}
    assert client.post(url, json={"name": "x"}, headers=headers).status_code == 400
    assert client.post(url, json={"name": "x", "yaml": "c: 1"}, headers=api_token(client, "alice")).status_code == 403
