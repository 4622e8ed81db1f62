"""Bad input gets a clear 400 or 404, never a 500, and nothing is written."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from include.db.models import Dataset, Item
from include.db.session import session_scope
from tests.webapp.conftest import api_token, login, make_app
from tests.webapp.factories import dataset_with_tasks


@pytest.fixture
def app(db, users):
    return make_app(db)


def _items(db: str) -> int:
    with session_scope(db) as s:
        return int(s.scalar(select(func.count(Item.id))) or 0)


UPLOADS = [
    (
        "huge.csv",
        b"text,n\nfine,1\n" + b'"' + b"x" * 140_000 + b'",2\n',
        "huge.csv line 3: a cell is longer than 131,072",
    ),
    ("nul.csv", b"text\nfirst\nbad\x00text\n", "nul.csv line 3: contains a NUL character"),
    ("nul.jsonl", b'{"text": "ok"}\n{"text": "bad\\u0000text"}\n', "nul.jsonl line 2: contains a NUL character"),
    ("meta.jsonl", b'{"text": "ok", "tag": "x\\u0000"}\n', "meta.jsonl line 1: contains a NUL character"),
    (
        "lone.jsonl",
        b'{"text": "ok"}\n{"text": "half \\ud800 pair"}\n',
        "lone.jsonl line 2: contains \\ud800, an unpaired",
    ),
]


@pytest.mark.parametrize(("name", "data", "message"), UPLOADS, ids=[u[0] for u in UPLOADS])
def test_bad_uploads_are_refused_with_the_line(app, db, name: str, data: bytes, message: str) -> None:
    dataset_id, _ = dataset_with_tasks(db, "uploads", 0)
    with session_scope(db) as s:
        s.get_one(Dataset, dataset_id).keep_columns = ["tag"]  # a kept column is checked like the text
    with app.test_client() as client:
        login(client, "admin")
        added = client.post(
            f"/admin/datasets/{dataset_id}/upload",
            data={"file": (io.BytesIO(data), name), "text_column": "text"},
            content_type="multipart/form-data",
        )
        assert added.status_code == 400
        assert message in added.get_data(as_text=True)
        created = client.post(
            "/admin/datasets/new",
            data={
                "name": f"new-{name.replace('.', '-')}",
                "labels": "A, B",
                "source": "upload",
                "text_column": "text",
                "keep_columns": "tag",
                "file": (io.BytesIO(data), name),
            },
            content_type="multipart/form-data",
        )
        assert created.status_code == 400 and message in created.get_data(as_text=True)
    assert _items(db) == 0
    with session_scope(db) as s:
        assert s.scalar(select(func.count(Dataset.id))) == 1  # only the one made above


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/admin/tasks?page=99999999999999999999", 400),
        ("/admin/tasks?page=2147483648000", 400),
        ("/admin/tasks?dataset_id=99999999999", 400),
        ("/admin/tasks?dataset_id=%C2%B2", 400),  # "²" passes str.isdigit()
        ("/admin/tasks?assignee=%00", 400),
        ("/admin/datasets/99999999999", 404),
        ("/admin/datasets/99999999999999999999999", 404),
        ("/admin/experiments/2147483648", 404),
        ("/admin/jobs?dataset_id=-1", 400),
        ("/admin/pipelines?dataset_id=1e3", 400),
    ],
)
def test_malformed_numbers_in_pages(app, path: str, code: int) -> None:
    with app.test_client() as client:
        login(client, "admin")
        response = client.get(path)
    assert response.status_code == code, response.get_data(as_text=True)[:300]
    assert b"Something went wrong" not in response.data


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/v1/jobs/99999999999", 404),
        ("/api/v1/jobs?limit=%C2%B2", 400),
        ("/api/v1/datasets/99999999999/stats", 404),
        ("/api/v1/datasets/1/priority_tasks?limit=99999999999999999999", 400),
        ("/api/v1/tasks/99999999999999999999/unassign", 404),
    ],
)
def test_malformed_numbers_in_the_api(app, db, path: str, code: int) -> None:
    dataset_id, _ = dataset_with_tasks(db, "api-numbers", 1)
    assert dataset_id == 1  # ids restart with every test
    with app.test_client() as client:
        headers = api_token(client, "admin")
        response = client.post(path, headers=headers) if "unassign" in path else client.get(path, headers=headers)
    assert response.status_code == code
    assert response.is_json and response.json["status"] == code


def test_annotator_pages_refuse_bad_numbers(app) -> None:
    with app.test_client() as client:
        login(client, "alice")
        assert client.get("/me/tasks?page=%C2%B2").status_code == 400
        assert client.get("/me/tasks?page=99999999999999999999").status_code == 400
        assert client.get("/me/tasks/99999999999999999999").status_code == 404
        headers = api_token(client, "alice")
        assert client.get("/api/v1/annotator/tasks?page=99999999999", headers=headers).status_code == 400


def test_api_json_with_nul_or_wrong_types(app) -> None:
    with app.test_client() as client:
        headers = api_token(client, "admin")
        nul = client.post(
            "/api/v1/datasets", data=json.dumps({"name": "x\u0000y"}), headers=headers, content_type="application/json"
        )
        assert nul.status_code == 400 and "NUL" in nul.json["error"]
        assert client.post("/api/v1/datasets", json={"name": 5}, headers=headers).status_code == 400
        labels = client.post("/api/v1/datasets", json={"name": "lbl", "labels": "A,B"}, headers=headers)
        assert labels.status_code == 400 and "labels must be a list" in labels.json["error"]
        assign = client.post("/api/v1/datasets/1/auto_assign?username=alice&count=%C2%B2", headers=headers)
        assert assign.status_code in (400, 404)
