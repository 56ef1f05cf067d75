"""deploy/kubernetes/ is checked by rendering and reading it: no cluster runs here.

Each overlay is rendered (tests/deploy/kustomize_subset.py, cross-checked
with `kubectl kustomize` where it is installed), every Kubernetes object is
validated against the API schemas of a pinned Kubernetes version
(kubernetes-validate, offline), KEDA's objects against the fields KEDA
documents, and the wiring between objects and the code is checked: selectors,
Secret keys, probes on real routes, real `sweeps` subcommands and settings,
the KEDA query, and the connection budget against PostgreSQL's
max_connections. About 8 s in all (the CLI and optuna-dashboard --help calls).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from service.api.app import create_app
from service.cli import app as cli
from service.core.config import Settings
from service.core.connections import ConnectionBudget
from tests.deploy.kustomize_subset import render

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (KUBE / "overlays").iterdir())
# The oldest Kubernetes release the manifests must be valid for (each field used exists there).
KUBERNETES_VERSION = "1.29.0"
VERSION = re.findall(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)[0]
SWEEPS_COMPONENTS = {"api", "worker-cpu", "worker-gpu", "migrations", "optuna-dashboard"}
# optuna-dashboard's SQLAlchemy engine keeps SQLAlchemy's default QueuePool: 5 + 10 overflow.
DASHBOARD_CONNECTIONS = 15
# KEDA's postgresql scaler holds one connection per ScaledObject.
KEDA_CONNECTIONS_PER_SCALER = 1
POSTGRES_RESERVED = 3  # superuser_reserved_connections' default

# The fields of KEDA's ScaledObject and TriggerAuthentication (keda.sh/v1alpha1)
# these manifests use, as KEDA's documentation gives them.
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}},
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer", "minimum": 1},
                    "cooldownPeriod": {"type": "integer", "minimum": 0},
                    "advanced": {"type": "object"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"const": "postgresql"},
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {"type": "string"}},
                                },
                                # KEDA's trigger metadata is a map of strings
                                "metadata": {
                                    "type": "object",
                                    "required": ["query", "targetQueryValue"],
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {"parameter": {"type": "string"}, "name": {}, "key": {}},
                        },
                    }
                },
            },
        },
    },
}


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(KUBE / "overlays" / request.param)


def _find(resources: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] == kind and (name is None or r["metadata"]["name"] == name)]


def _one(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = _find(resources, kind, name)
    return found


def _workloads(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in resources if r["kind"] in ("Deployment", "StatefulSet", "Job")]


def _containers(workload: dict[str, Any], *, init: bool = True) -> list[dict[str, Any]]:
    pod = workload["spec"]["template"]["spec"]
    return [*(pod.get("initContainers", []) if init else []), *pod["containers"]]


def _component(workload: dict[str, Any]) -> str:
    return str(workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _env(container: dict[str, Any], resources: list[dict[str, Any]]) -> dict[str, str]:
    """The container's plain environment: ConfigMap entries, then literal env values."""
    values: dict[str, str] = {}
    for source in container.get("envFrom", []):
        values.update(_one(resources, "ConfigMap", source["configMapRef"]["name"])["data"])
    values.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return values


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_subset_renders_what_kubectl_kustomize_renders(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, ours = overlay
    out = subprocess.run(
        ["kubectl", "kustomize", str(KUBE / "overlays" / name)], capture_output=True, text=True, check=True
    )
    theirs = [d for d in yaml.safe_load_all(out.stdout) if d]

    def key(r: dict[str, Any]) -> tuple[str, str]:
        return r["kind"], r["metadata"]["name"]

    def decoded(r: dict[str, Any]) -> dict[str, Any]:
        # kubectl wraps base64 at 76 columns; compare the values
        if r["kind"] == "Secret":
            return {**r, "data": {k: base64.b64decode(v) for k, v in r["data"].items()}}
        return r

    assert sorted(map(key, ours)) == sorted(map(key, theirs))
    by_key = {key(r): decoded(r) for r in theirs}
    for resource in ours:
        assert decoded(resource) == by_key[key(resource)], key(resource)


def test_every_object_is_valid_for_the_pinned_kubernetes_and_keda(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, resources = overlay
    for resource in resources:
        if resource["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(resource, KEDA_SCHEMAS[resource["kind"]])
        else:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_selectors_services_and_the_disruption_budget_match_pods(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, resources = overlay
    pods = {w["metadata"]["name"]: w["spec"]["template"] for w in _workloads(resources)}
    for workload in _workloads(resources):
        if workload["kind"] != "Job":
            assert _matches(
                workload["spec"]["selector"]["matchLabels"],
                workload["spec"]["template"]["metadata"]["labels"],
            )
    for service in _find(resources, "Service"):
        (target,) = [
            t for t in pods.values() if _matches(service["spec"]["selector"], t["metadata"]["labels"])
        ]
        port_names = {p["name"] for c in target["spec"]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names
    (pdb,) = _find(resources, "PodDisruptionBudget")
    (api,) = [
        t for t in pods.values() if _matches(pdb["spec"]["selector"]["matchLabels"], t["metadata"]["labels"])
    ]
    assert _one(resources, "Deployment", "sweeps-api")["spec"]["replicas"] > pdb["spec"]["minAvailable"]


def test_the_secret_keys_the_pods_and_keda_read_exist(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    name, resources = overlay
    read: set[tuple[str, str]] = set()
    for workload in _workloads(resources):
        for container in _containers(workload):
            for e in container.get("env", []):
                if "valueFrom" in e:
                    ref = e["valueFrom"]["secretKeyRef"]
                    read.add((ref["name"], ref["key"]))
    for auth in _find(resources, "TriggerAuthentication"):
        read |= {(ref["name"], ref["key"]) for ref in auth["spec"]["secretTargetRef"]}
    secrets = _find(resources, "Secret")
    if secrets:
        provided = {(s["metadata"]["name"], k) for s in secrets for k in s["data"]}
    else:
        # the external overlay's Secret comes from `kubectl create secret`, as its kustomization and docs say
        provided = set()
        for text in ((KUBE / "overlays" / name / "kustomization.yaml").read_text(), _docs()):
            for secret, command in re.findall(r"create secret generic (\S+)(.*?)(?:\n\s*\n|```)", text, re.S):
                provided |= {(secret, k) for k in re.findall(r"--from-literal=([\w-]+)=", command)}
    assert read and read <= provided, read - provided


def _docs() -> str:
    return (ROOT / "docs" / "kubernetes.md").read_text()


def test_the_bundled_database_secret_is_consistent() -> None:
    resources = render(KUBE / "overlays" / "bundled-postgres")
    secret = {
        k: base64.b64decode(v).decode()
        for k, v in _one(resources, "Secret", "sweeps-database")["data"].items()
    }
    postgres = _one(resources, "StatefulSet", "sweeps-postgres")
    env = {e["name"]: e.get("value") for e in _containers(postgres)[0]["env"]}
    service = _one(resources, "Service", "sweeps-postgres")
    for key, host in (("url", "sweeps-postgres"), ("keda-connection", "sweeps-postgres.sweeps.svc")):
        url = make_url(secret[key])
        assert url.host == host and url.port == service["spec"]["ports"][0]["port"]
        assert (url.username, url.password, url.database) == (
            env["POSTGRES_USER"],
            secret["postgres-password"],
            env["POSTGRES_DB"],
        )
    assert (
        make_url(secret["url"]).drivername == "postgresql+psycopg"
    )  # what our settings and the dashboard use
    assert make_url(secret["keda-connection"]).drivername == "postgresql"  # a libpq URL for KEDA
    Settings(database_url=secret["url"])


def test_probes_point_at_real_routes_and_commands_are_real(
    overlay: tuple[str, list[dict[str, Any]]], sqlite_url: str
) -> None:
    _, resources = overlay
    probed = {
        container[probe]["httpGet"]["path"]
        for workload in _workloads(resources)
        for container in _containers(workload)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        if "httpGet" in container.get(probe, {})
    }
    assert probed == {"/healthz", "/readyz"}
    with TestClient(create_app(Settings(database_url=sqlite_url))) as client:
        for path in probed:  # a ready API on a migrated database answers 200
            assert client.get(path).status_code == 200, path
    runner = CliRunner()
    for workload in _workloads(resources):
        for container in _containers(workload):
            command = container.get("command") or []
            if command[:1] == ["sweeps"]:
                result = runner.invoke(cli, [*command[1:], "--help"])
                assert result.exit_code == 0, f"{command}: {result.output}"
            elif command[:1] == ["optuna-dashboard"]:
                exe = Path(sys.executable).with_name("optuna-dashboard")
                help_text = subprocess.run([str(exe), "--help"], capture_output=True, text=True).stdout
                assert all(opt in help_text for opt in command[1:] if opt.startswith("--"))
                assert command[-1] == "$(SWEEPS_DATABASE_URL)"
                assert "SWEEPS_DATABASE_URL" in {e["name"] for e in container["env"]}
            else:
                assert container["image"].startswith("postgres:")
    job = _one(resources, "Job", "sweeps-migrate")
    assert _containers(job)[0]["command"] == ["sweeps", "migrate"]
    for workload in _workloads(resources):
        if _component(workload) in SWEEPS_COMPONENTS - {"migrations"}:
            (init,) = workload["spec"]["template"]["spec"]["initContainers"]
            assert init["command"][:2] == ["sweeps", "wait-for-migrations"]


def test_environment_keys_are_settings(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, resources = overlay
    fields = set(Settings.model_fields)
    for workload in _workloads(resources):
        if _component(workload) == "postgres":
            continue
        for container in _containers(workload):
            names = {e["name"] for e in container.get("env", [])} | set(_env(container, resources))
            for key in names:
                assert key.startswith("SWEEPS_") and key.removeprefix("SWEEPS_").lower() in fields, key
            Settings(**{k.removeprefix("SWEEPS_").lower(): v for k, v in _env(container, resources).items()})


def test_images_follow_the_tag_scheme_and_gpu_workers_get_a_gpu(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, resources = overlay
    for workload in _workloads(resources):
        component = _component(workload)
        if component == "postgres":
            continue
        variant = "gpu" if component == "worker-gpu" else "cpu"
        assert {c["image"] for c in _containers(workload)} == {f"stability-sweeps:{VERSION}-{variant}"}
    gpu = _one(resources, "Deployment", "sweeps-worker-gpu")
    pod = gpu["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["command"][worker["command"].index("--device") + 1].startswith("gpu")
    assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])


def test_pods_run_as_the_images_non_root_user_on_a_read_only_root(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, resources = overlay
    dockerfile_user = re.findall(r"^USER (\d+)", (ROOT / "Dockerfile").read_text(), re.M)[-1]
    for workload in _workloads(resources):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        if _component(workload) != "postgres":
            assert str(pod["securityContext"]["runAsUser"]) == dockerfile_user
        volumes = {v["name"] for v in pod.get("volumes", [])} | {
            t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
        }
        for container in _containers(workload):
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes
            if container in pod["containers"]:
                assert "/tmp" in {m["mountPath"] for m in container.get("volumeMounts", [])}
                assert "memory" in container["resources"]["limits"]


def test_workers_scale_on_the_projects_query_one_per_pack(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, resources = overlay
    sql = (KUBE / "base" / "outstanding-replicas.sql").read_text()
    statement = " ".join(" ".join(line for line in sql.splitlines() if not line.startswith("--")).split())
    scaled = _find(resources, "ScaledObject")
    assert {s["spec"]["scaleTargetRef"]["name"] for s in scaled} == {"sweeps-worker-cpu", "sweeps-worker-gpu"}
    auth_names = {a["metadata"]["name"] for a in _find(resources, "TriggerAuthentication")}
    for so in scaled:
        target = _one(resources, "Deployment", so["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"]  # the ScaledObject owns it; `kubectl apply` must not reset it
        assert so["spec"]["minReplicaCount"] == 0
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "postgresql" and trigger["authenticationRef"]["name"] in auth_names
        assert " ".join(trigger["metadata"]["query"].split()) == statement
        (worker,) = _containers(target, init=False)
        assert trigger["metadata"]["targetQueryValue"] == _env(worker, resources)["SWEEPS_PACK_MAX_REPLICAS"]
        # a worker must outlive one epoch after SIGTERM to give its pack back cleanly
        assert target["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 300


def _connections(workload: dict[str, Any], resources: list[dict[str, Any]]) -> int:
    """The most database connections one pod of this workload holds."""
    if _component(workload) == "optuna-dashboard":
        return DASHBOARD_CONNECTIONS
    (main,) = _containers(workload, init=False)
    env = _env(main, resources)
    settings = Settings(**{k.removeprefix("SWEEPS_").lower(): v for k, v in env.items()})
    return ConnectionBudget.from_settings(settings).max_connections


def test_postgres_max_connections_covers_every_pod_at_its_maximum_scale() -> None:
    resources = render(KUBE / "overlays" / "bundled-postgres")
    max_replicas = {
        s["spec"]["scaleTargetRef"]["name"]: s["spec"]["maxReplicaCount"]
        for s in _find(resources, "ScaledObject")
    }
    total = KEDA_CONNECTIONS_PER_SCALER * len(max_replicas)
    for workload in _workloads(resources):
        if _component(workload) == "postgres":
            continue
        name = workload["metadata"]["name"]
        replicas = max_replicas.get(name, workload["spec"].get("replicas", 1))
        total += replicas * _connections(workload, resources)
    postgres = _one(resources, "StatefulSet", "sweeps-postgres")
    args = _containers(postgres)[0]["args"]
    max_connections = next(int(a.split("=")[1]) for a in args if a.startswith("max_connections="))
    assert total <= max_connections - POSTGRES_RESERVED, (total, max_connections)
    # the docs quote the same figure
    assert f"max_connections={max_connections}" in _docs() and str(total) in _docs()


def test_only_database_clients_reach_the_bundled_database() -> None:
    resources = render(KUBE / "overlays" / "bundled-postgres")
    (policy,) = _find(resources, "NetworkPolicy")
    postgres = _one(resources, "StatefulSet", "sweeps-postgres")
    assert _matches(
        policy["spec"]["podSelector"]["matchLabels"], postgres["spec"]["template"]["metadata"]["labels"]
    )
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [5432]
    peers = [p for p in rule["from"] if "namespaceSelector" not in p]
    (keda,) = [p for p in rule["from"] if "namespaceSelector" in p]
    assert keda["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "keda"}
    allowed = {
        _component(w)
        for w in _workloads(resources)
        if any(
            _matches(p["podSelector"]["matchLabels"], w["spec"]["template"]["metadata"]["labels"])
            for p in peers
        )
    }
    assert allowed == SWEEPS_COMPONENTS


def test_the_documented_per_pod_budget_matches_the_manifests() -> None:
    resources = render(KUBE / "overlays" / "external-database")
    per_pod = {_component(w): _connections(w, resources) for w in _workloads(resources)}
    assert per_pod["worker-cpu"] == per_pod["worker-gpu"] == 4
    assert per_pod["api"] == 12
    assert per_pod["optuna-dashboard"] == DASHBOARD_CONNECTIONS
