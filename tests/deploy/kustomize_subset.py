"""The part of kustomize that deploy/kubernetes/ uses, in Python, so the tests render offline.

Supported, as `kubectl kustomize` does it: `resources` (YAML files and
directories with a kustomization.yaml), `namespace`, `secretGenerator` with
`literals` (and `generatorOptions.disableNameSuffixHash: true`, which the
overlays set), and `patches` given by `path` as strategic-merge patches.
Anything else in a kustomization.yaml is an error here, so a manifest change
that needs more cannot pass unnoticed. test_kubernetes_manifests.py compares
the result with `kubectl kustomize` where kubectl is installed.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "secretGenerator", "generatorOptions", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


def render(directory: Path) -> list[Resource]:
    """The resources `kubectl kustomize directory` prints, in the order they are declared."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise ValueError(
            f"{directory}: kustomization fields this subset does not implement: {sorted(unknown)}"
        )
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            resources.extend(render(path))
        else:
            resources.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    resources.extend(_secrets(kustomization, directory))
    for patch in kustomization.get("patches", []):
        if set(patch) != {"path"}:
            raise ValueError(f"{directory}: only `patches: - path: file` is implemented, not {patch}")
        _apply_patch(resources, yaml.safe_load((directory / patch["path"]).read_text()))
    namespace = kustomization.get("namespace")
    if namespace:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource.setdefault("metadata", {})["namespace"] = namespace
    return resources


def _secrets(kustomization: dict[str, Any], directory: Path) -> list[Resource]:
    generators = kustomization.get("secretGenerator", [])
    if generators and not kustomization.get("generatorOptions", {}).get("disableNameSuffixHash"):
        raise ValueError(f"{directory}: name suffix hashes are not implemented; set disableNameSuffixHash")
    secrets = []
    for gen in generators:
        if set(gen) - {"name", "literals"}:
            raise ValueError(f"{directory}: only secretGenerator name + literals is implemented, not {gen}")
        data = {}
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = base64.b64encode(value.encode()).decode()
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": gen["name"]},
                "type": "Opaque",
                "data": data,
            }
        )
    return secrets


def _apply_patch(resources: list[Resource], patch: Resource) -> None:
    targets = [
        r
        for r in resources
        if r["kind"] == patch["kind"] and r["metadata"]["name"] == patch["metadata"]["name"]
    ]
    if len(targets) != 1:
        raise ValueError(
            f"patch for {patch['kind']}/{patch['metadata']['name']} matches {len(targets)} resources"
        )
    merged = strategic_merge(targets[0], patch)
    targets[0].clear()
    targets[0].update(merged)


def strategic_merge(base: Any, patch: Any) -> Any:
    """Maps merge key by key (null deletes); lists of named maps merge by name; other lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = strategic_merge(out[key], value) if key in out else copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and _named(base) and _named(patch):
        out = copy.deepcopy(base)
        index = {item["name"]: i for i, item in enumerate(out)}
        for item in patch:
            if item["name"] in index:
                out[index[item["name"]]] = strategic_merge(out[index[item["name"]]], item)
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)
