"""The OpenAPI document lists what the server really answers (src/posomni/openapi.py); the fuzzer checks the
server against it, these check the document itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from posomni.app import create_app
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = Path(tmp_path_factory.mktemp("openapi")) / "unused.db"
    app: FastAPI = create_app(make_settings(DATABASE_URL=f"sqlite+aiosqlite:///{path}"))
    return app.openapi()


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{method.upper()} {path}", op) for path, ops in document["paths"].items() for method, op in ops.items()]


def test_every_error_response_has_the_one_error_shape(document: dict[str, Any]) -> None:
    wrong = [
        f"{name} {status}"
        for name, op in operations(document)
        for status, response in op["responses"].items()
        if status[0] in "45"
        and response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        != "#/components/schemas/ErrorResponse"
    ]
    assert wrong == []
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_operations_behind_a_permission_document_401_and_403(document: dict[str, Any]) -> None:
    ops = dict(operations(document))
    assert {"401", "403"} <= set(ops["POST /sales/{sale_id}/complete"]["responses"])
    assert {"401", "403"} <= set(ops["GET /stores"]["responses"])
    assert "403" not in ops["GET /health"]["responses"]
    assert {"402", "502"} <= set(ops["POST /sales/{sale_id}/complete"]["responses"])
    assert "423" in ops["POST /sales/{sale_id}/lines/{line_id}/price"]["responses"]
    missing = [name for name, op in operations(document) if not {"429", "503"} <= set(op["responses"])]
    assert missing == []


def test_a_format_parameter_documents_its_media_types(document: dict[str, Any]) -> None:
    ops = dict(operations(document))
    receipt = ops["GET /sales/{sale_id}/receipt"]["responses"]["200"]["content"]
    assert {"application/json", "text/html", "text/plain"} <= set(receipt)
    report = ops["GET /shifts/{shift_id}/z-report"]["responses"]["200"]["content"]
    assert {"text/html", "text/csv"} <= set(report)
