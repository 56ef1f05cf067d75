"""The application's layout: every route documents its answer, and routes stand alone."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from service.api.app import create_app
from service.core.config import Settings
from service.core.db import Database

ROUTES = Path(__file__).resolve().parents[2] / "service" / "api" / "routes"


def test_no_route_module_imports_another() -> None:
    """Shared helpers live outside routes/ (query_params, csv_export, deps, schemas)."""
    for path in sorted(ROUTES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            assert not any(n.startswith("service.api.routes") for n in names), (path.name, names)


def test_every_json_answer_is_described_by_a_model(settings: Settings, db: Database) -> None:
    """Not a bare ``object``: the OpenAPI document names the fields of every JSON answer."""
    doc = create_app(settings, db).openapi()
    untyped = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            for code, response in op["responses"].items():
                content = response.get("content", {})
                if code.startswith("2") and "application/json" in content:
                    if "$ref" not in json.dumps(content["application/json"].get("schema", {})):
                        untyped.append(f"{method} {path} {code}")
    assert untyped == []
    assert len(doc["paths"]) > 20  # the routes were found
