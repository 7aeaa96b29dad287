"""The replicated shape, checked statically as deploy/'s other manifests are: compose.yaml with
deploy/compose.replicas.yaml on top, and the deploy/k8s-replicas overlay applied to deploy/k8s.
Several runtime and tools replicas share one PostgreSQL DSN, every setting is one the service
reads and loads, clients reach every replica through DNS, probes ask gRPC health."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.deploy.test_manifests import DEPLOY, bound_port, check_service_variables, container, interpolate

ENV = {"DUCKLM_GRPC_TOKEN": "g" * 24, "DUCKLM_GATEWAY_TOKEN": "w" * 24, "DUCKLM_POSTGRES_PASSWORD": "p" * 24}


class _ComposeLoader(yaml.SafeLoader):
    """YAML with compose's `!reset` (drop what the base file set)."""


class _Reset:
    pass


_ComposeLoader.add_constructor("!reset", lambda loader, node: _Reset())


def _merge_compose(base: Any, override: Any) -> Any:
    """Compose's merge: mappings key by key, `!reset` removes, other values replace."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if isinstance(value, _Reset):
                merged.pop(key, None)
            else:
                merged[key] = _merge_compose(base.get(key), value)
        return merged
    return override


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    base = yaml.load(interpolate((DEPLOY / "compose.yaml").read_text(), ENV), _ComposeLoader)
    override = yaml.load(interpolate((DEPLOY / "compose.replicas.yaml").read_text(), ENV), _ComposeLoader)
    merged: dict[str, Any] = _merge_compose(base, override)
    return merged


def test_compose_replicas_share_one_database(compose: dict[str, Any]) -> None:
    services = compose["services"]
    url = f"postgresql://ducklm:{ENV['DUCKLM_POSTGRES_PASSWORD']}@postgres:5432/ducklm"
    for name, variable, replicas in (("runtime", "DUCKLM_RUNTIME_DATABASE_URL", 3), ("tools", "DUCKLM_TOOLS_DATABASE_URL", 2)):
        service = services[name]
        assert service["deploy"]["replicas"] == replicas
        assert service["environment"][variable] == url
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert "ports" not in service, f"{name}: replicas cannot share one host port"
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == ENV["DUCKLM_POSTGRES_PASSWORD"]
    assert services["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for volume in services["postgres"]["volumes"]:
        assert volume.split(":", 1)[0] in compose["volumes"]
    with pytest.raises(ValueError, match="DUCKLM_POSTGRES_PASSWORD"):
        interpolate((DEPLOY / "compose.replicas.yaml").read_text(), {})


def test_compose_clients_reach_every_replica_by_dns(compose: dict[str, Any]) -> None:
    services = compose["services"]
    envs = {name: dict(services[name]["environment"]) for name in ("runtime", "tools", "skills", "memory", "gateway")}
    for name, env in envs.items():
        check_service_variables(name, env)
        for key, value in env.items():
            if key.endswith("_ADDRESS") and value.startswith("dns:///"):
                host, port = value.removeprefix("dns:///").rsplit(":", 1)
                assert host in ("runtime", "tools") and int(port) == bound_port(envs[host], host), key
    assert envs["gateway"]["DUCKLM_GATEWAY_RUNTIME_ADDRESS"] == "dns:///runtime:50051"
    assert envs["memory"]["DUCKLM_MEMORY_RUNTIME_ADDRESS"] == "dns:///runtime:50051"
    assert envs["runtime"]["DUCKLM_RUNTIME_TOOLS_ADDRESS"] == "dns:///tools:50052"


# -- Kubernetes ------------------------------------------------------------------------------


def _strategic_merge(base: Any, patch: Any) -> Any:
    """The part of kustomize's strategic merge these patches use: mappings key by key (null
    removes), lists of named items merged by name, other lists and values replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = _strategic_merge(base.get(key), value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i for i in patch):
        merged_list = [copy.deepcopy(item) for item in base]
        for item in patch:
            index = next((i for i, old in enumerate(merged_list) if old.get("name") == item["name"]), None)
            if index is None:
                merged_list.append(item)
            else:
                merged_list[index] = _strategic_merge(merged_list[index], item)
        return merged_list
    return patch


def _documents(folder: str, names: list[str]) -> list[dict[str, Any]]:
    return [doc for name in names for doc in yaml.safe_load_all((DEPLOY / folder / name).read_text())]


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    overlay = yaml.safe_load((DEPLOY / "k8s-replicas" / "kustomization.yaml").read_text())
    assert overlay["kind"] == "Kustomization" and overlay["resources"][0] == "../k8s"
    base = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for document in _documents("k8s", base["resources"]) + _documents("k8s-replicas", overlay["resources"][1:]):
        key = (document["kind"], document["metadata"]["name"])
        assert key not in objects, f"{key} defined twice"
        objects[key] = document
    for patch in overlay["patches"]:
        for document in _documents("k8s-replicas", [patch["path"]]):
            key = (document["kind"], document["metadata"]["name"])
            assert key in objects, f"{patch['path']} patches {key}, which the base does not define"
            objects[key] = _strategic_merge(objects[key], document)
    listed = {path.name for path in (DEPLOY / "k8s-replicas").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == set(overlay["resources"][1:]) | {p["path"] for p in overlay["patches"]}
    return objects


def test_k8s_runtime_and_tools_replicas_read_the_database_secret(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    secret = k8s[("Secret", "ducklm-database")]["stringData"]
    assert secret["url"].startswith("postgresql://") and "@postgres:5432/" in secret["url"]
    for name, replicas in (("runtime", 3), ("tools", 2)):
        deployment = k8s[("Deployment", name)]
        assert deployment["spec"]["replicas"] == replicas
        assert deployment["spec"]["strategy"] == {"type": "RollingUpdate"}
        spec = container(deployment)
        env = {variable["name"]: variable.get("valueFrom", {}) for variable in spec["env"]}
        assert env[f"DUCKLM_{name.upper()}_DATABASE_URL"] == {"secretKeyRef": {"name": "ducklm-database", "key": "url"}}
        assert "DUCKLM_GRPC_TOKEN" in env
        assert spec["readinessProbe"]["grpc"] == {"port": 50051 if name == "runtime" else 50052}
    runtime = container(k8s[("Deployment", "runtime")])
    assert {"name": "DUCKLM_RUNTIME_REPLICA_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}} in runtime["env"]
    volumes = {v["name"]: v for v in k8s[("Deployment", "runtime")]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}, "runtime replicas keep no state of their own"
    assert k8s[("PersistentVolumeClaim", "tools-data")]["spec"]["accessModes"] == ["ReadWriteMany"]
    postgres = k8s[("StatefulSet", "postgres")]
    ports = {p["name"] for p in container(postgres)["ports"]}
    assert all(p["targetPort"] in ports for p in k8s[("Service", "postgres")]["spec"]["ports"])
    assert container(postgres)["readinessProbe"]["exec"]["command"][0] == "pg_isready"


def test_k8s_clients_reach_every_replica_through_headless_services(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    env = dict(k8s[("ConfigMap", "ducklm-config")]["data"])
    for name in ("runtime", "tools", "skills", "memory", "gateway"):
        check_service_variables(name, {**env, "DUCKLM_GATEWAY_TOKEN": "t" * 20})
    for key, value in env.items():
        if not value.startswith("dns:///"):
            continue
        host, port = value.removeprefix("dns:///").rsplit(":", 1)
        service = k8s[("Service", host)]
        assert service["spec"]["clusterIP"] == "None", f"{key}: {host} must list every replica"
        labels = k8s[("Deployment", host.removesuffix("-replicas"))]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}, key
    assert env["DUCKLM_GATEWAY_RUNTIME_ADDRESS"] == "dns:///runtime-replicas:50051"
