"""The layering rules of docs/architecture.md, checked on the source (no imports executed).

- ORM models and SQLAlchemy sessions' queries live in ``service/core/repo/``:
  nothing else in the product imports ``service.core.repo.models``.
- Routes never import another route module (shared HTTP helpers live beside them).
- The analysis package is pure: no database, no HTTP, no TensorFlow.
- The API process never imports TensorFlow or Keras at module level.
- No module is named after a standard-library module.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("service", "workers", "stability_sweeps")
MODELS = "service.core.repo.models"


def _modules(*packages: str) -> Iterator[tuple[str, Path]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            yield ".".join(p for p in rel.parts if p != "__init__"), path


def _imports(path: Path, *, top_level_only: bool = False) -> Iterator[str]:
    """Absolute module names imported by a file; with top_level_only, not those inside functions."""
    found: list[str] = []

    class Visitor(ast.NodeVisitor):
        def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
            if not top_level_only:
                self.generic_visit(node)

        visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

        def visit_Import(self, node: ast.Import) -> None:
            found.extend(alias.name for alias in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.module and node.level == 0:
                found.append(node.module)
                found.extend(f"{node.module}.{alias.name}" for alias in node.names)

    Visitor().visit(ast.parse(path.read_text(), filename=str(path)))
    return iter(found)


def test_only_repositories_import_the_orm_models() -> None:
    offenders = [
        f"{name} imports {imp}"
        for name, path in _modules(*PRODUCT)
        if not name.startswith("service.core.repo")
        for imp in _imports(path)
        if imp == MODELS or imp.startswith(MODELS + ".")
    ]
    assert offenders == [], "ORM rows stay in service/core/repo/: " + "; ".join(offenders)


def test_routes_do_not_import_each_other() -> None:
    prefix = "service.api.routes."
    offenders = [
        f"{name} imports {imp}"
        for name, path in _modules("service")
        if name.startswith(prefix)
        for imp in _imports(path)
        if imp.startswith(prefix) and prefix + imp[len(prefix) :].split(".")[0] != name
    ]
    assert offenders == [], "shared HTTP helpers belong outside routes/: " + "; ".join(offenders)


def test_analysis_is_pure() -> None:
    forbidden = ("sqlalchemy", "fastapi", "starlette", "tensorflow", "keras")
    forbidden += ("service.core.repo", "service.api")
    offenders = [
        f"{name} imports {imp}"
        for name, path in _modules("service")
        if name.startswith("service.core.analysis")
        for imp in _imports(path)
        if imp.startswith(forbidden)
    ]
    assert offenders == []


@pytest.mark.parametrize("package", ["service", "stability_sweeps"])
def test_api_process_does_not_import_tensorflow_at_module_level(package: str) -> None:
    offenders = [
        f"{name} imports {imp} at module level"
        for name, path in _modules(package)
        for imp in _imports(path, top_level_only=True)
        if imp.split(".")[0] in ("tensorflow", "keras")
    ]
    assert offenders == []


def test_the_client_package_is_only_a_client_of_the_http_api() -> None:
    """stability_sweeps talks to the service over HTTP: importing it loads neither the service nor
    the workers (it reads spec YAML with the service's reader, lazily, inside a function)."""
    offenders = [
        f"{name} imports {imp} at module level"
        for name, path in _modules("stability_sweeps")
        for imp in _imports(path, top_level_only=True)
        if imp.split(".")[0] in ("service", "workers")
    ]
    assert offenders == []


def test_no_module_is_named_after_the_standard_library() -> None:
    stdlib = set(sys.stdlib_module_names)
    offenders = [
        str(path.relative_to(ROOT))
        for _, path in _modules(*PRODUCT)
        if path.stem in stdlib and path.stem != "__init__"
    ] + [
        str(path.relative_to(ROOT))
        for package in PRODUCT
        for path in (ROOT / package).rglob("__init__.py")
        if path.parent.name in stdlib
    ]
    assert offenders == []
