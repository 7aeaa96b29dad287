"""deploy/Dockerfile, deploy/compose.yaml and deploy/k8s/, checked statically (Docker and a
cluster cannot run here): they parse, have the expected kinds, and agree with each other and
with the code — every DUCKLM_* variable is one the service really reads, every peer address
points at a service that listens on that port, probes ask the port the service binds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from services.common.config import load_settings, repo_root
from services.gateway.config import Settings as GatewaySettings
from services.memory.config import Settings as MemorySettings
from services.runtime.config import Settings as RuntimeSettings
from services.runtime.models_config import load_models_config
from services.skills.config import Settings as SkillsSettings
from services.tools.config import Settings as ToolsSettings

DEPLOY = repo_root() / "deploy"
SETTINGS: dict[str, type[BaseModel]] = {
    "runtime": RuntimeSettings,
    "tools": ToolsSettings,
    "skills": SkillsSettings,
    "memory": MemorySettings,
    "gateway": GatewaySettings,
}
GRPC_SERVICES = ("runtime", "tools", "skills", "memory")
# Variables a service reads outside its Settings model.
EXTRA_FIELDS = {"metrics_address"}
SHARED_VARIABLES = {
    "DUCKLM_DATA_DIR",
    "DUCKLM_LOG_LEVEL",
    "DUCKLM_GRPC_TOKEN",
    "DUCKLM_GRPC_TLS_CERT",
    "DUCKLM_GRPC_TLS_KEY",
    "DUCKLM_GRPC_TLS_CA",
    "DUCKLM_APPROVER_TOKEN",
}


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: ${VAR}, ${VAR:-default}, ${VAR:?error}; $$ is a literal $."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        value = env.get(name, "")
        if operator == ":?" and not value:
            raise ValueError(f"required variable {name} is missing: {argument}")
        return value or (argument if operator == ":-" else "")

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}", replace, text)


def check_service_variables(service: str, env: dict[str, str]) -> None:
    """Every DUCKLM_<SERVICE>_* variable names a real setting, and the settings load."""
    prefix = f"DUCKLM_{service.upper()}_"
    fields = set(SETTINGS[service].model_fields) | EXTRA_FIELDS
    for key in env:
        if key.startswith(prefix):
            assert key[len(prefix) :].lower() in fields, f"{service} reads no setting called {key}"
    load_settings(
        SETTINGS[service],
        service,
        environ={key: value for key, value in env.items() if key.startswith(prefix)},
    )


def bound_port(env: dict[str, str], service: str) -> int:
    return int(env[f"DUCKLM_{service.upper()}_ADDRESS"].rsplit(":", 1)[1])


# -- compose ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    env = {
        "DUCKLM_GRPC_TOKEN": "grpc-token-for-the-test",
        "DUCKLM_GATEWAY_TOKEN": "gateway-token-for-the-test",
    }
    document: dict[str, Any] = yaml.safe_load(interpolate((DEPLOY / "compose.yaml").read_text(), env))
    return document


def compose_env(compose: dict[str, Any], service: str) -> dict[str, str]:
    environment = compose["services"][service].get("environment", {})
    assert isinstance(environment, dict)
    assert all(isinstance(value, str) for value in environment.values()), f"{service}: quote every value"
    return dict(environment)


def test_compose_refuses_to_start_without_the_tokens() -> None:
    with pytest.raises(ValueError, match="DUCKLM_GRPC_TOKEN"):
        interpolate((DEPLOY / "compose.yaml").read_text(), {"DUCKLM_GATEWAY_TOKEN": "x" * 20})
    with pytest.raises(ValueError, match="DUCKLM_GATEWAY_TOKEN"):
        interpolate((DEPLOY / "compose.yaml").read_text(), {"DUCKLM_GRPC_TOKEN": "x" * 20})


def test_compose_runs_each_process_in_its_own_container(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"llama-chat", "llama-embedding", "qdrant", *GRPC_SERVICES, "gateway"}
    for name in (*GRPC_SERVICES, "gateway"):
        assert services[name]["command"] == [name]
        assert services[name]["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert (DEPLOY / services[name]["build"]["context"] / services[name]["build"]["dockerfile"]).is_file()
    assert services["qdrant"]["image"].startswith("qdrant/qdrant:")
    for name in ("llama-chat", "llama-embedding"):
        assert services[name]["command"][0] == "llama-server"
    assert "--embeddings" in services["llama-embedding"]["command"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        for published in service.get("ports", []):
            assert published.startswith("127.0.0.1:"), (
                f"{name} publishes {published} beyond the host's loopback"
            )
        for volume in service.get("volumes", []):
            assert volume.split(":", 1)[0] in compose["volumes"], volume


def test_compose_wires_every_peer_by_configuration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (*GRPC_SERVICES, "gateway"):
        env = compose_env(compose, name)
        check_service_variables(name, env)
        assert set(env) - SHARED_VARIABLES <= {
            key for key in env if key.startswith(f"DUCKLM_{name.upper()}_")
        }
        for key, value in env.items():
            peer = re.fullmatch(rf"DUCKLM_{name.upper()}_(RUNTIME|TOOLS|SKILLS|MEMORY)_ADDRESS", key)
            if peer:
                host, port = value.rsplit(":", 1)
                assert host == peer.group(1).lower() and host in services, key
                assert int(port) == bound_port(compose_env(compose, host), host), key
    # Who needs whom: the runtime its three peers, memory the runtime, the gateway everyone.
    assert {
        key for key in compose_env(compose, "runtime") if key.endswith("_ADDRESS") and "METRICS" not in key
    } == {
        "DUCKLM_RUNTIME_ADDRESS",
        "DUCKLM_RUNTIME_TOOLS_ADDRESS",
        "DUCKLM_RUNTIME_SKILLS_ADDRESS",
        "DUCKLM_RUNTIME_MEMORY_ADDRESS",
    }
    memory = compose_env(compose, "memory")
    assert memory["DUCKLM_MEMORY_BACKEND"] == "qdrant"
    assert memory["DUCKLM_MEMORY_QDRANT_URL"] == "http://qdrant:6333"


def test_compose_health_checks_ask_the_bound_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in GRPC_SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "ducklm-entrypoint", "grpc-health"]
        assert test[3] == f"127.0.0.1:{bound_port(compose_env(compose, name), name)}"
        assert compose_env(compose, name)[f"DUCKLM_{name.upper()}_METRICS_ADDRESS"] == "0.0.0.0:9090"
    for name in ("llama-chat", "llama-embedding"):
        port = services[name]["command"][services[name]["command"].index("--port") + 1]
        assert services[name]["healthcheck"]["test"][-1] == f"http://127.0.0.1:{port}/health"
    assert services["gateway"]["healthcheck"]["test"][-1].endswith("/healthz")


def test_compose_models_file_points_at_the_llama_containers(compose: dict[str, Any], tmp_path: Path) -> None:
    runtime = compose["services"]["runtime"]
    target = runtime["configs"][0]["target"]
    assert compose_env(compose, "runtime")["DUCKLM_RUNTIME_MODELS_FILE"] == target
    models_file = tmp_path / "models.yaml"
    models_file.write_text(compose["configs"][runtime["configs"][0]["source"]]["content"])
    config = load_models_config(models_file, {})
    assert not config.servers
    for role, container in (("chat", "llama-chat"), ("embedding", "llama-embedding")):
        command = compose["services"][container]["command"]
        endpoint = config.roles[role].endpoint
        assert endpoint == f"http://{container}:{command[command.index('--port') + 1]}/v1"


# -- Dockerfile ------------------------------------------------------------------------------


def test_dockerfile_builds_llama_server_and_the_model_and_runs_any_service() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.startswith("# syntax=docker/dockerfile:")  # heredocs need BuildKit's syntax
    assert "bash scripts/build_llama_server.sh" in dockerfile and "bash scripts/fetch_model.sh" in dockerfile
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from=" not in line and "<<" not in line:
            for source in line.split()[1:-1]:
                assert (repo_root() / source).exists(), f"COPY {source}: no such path in the repository"
    entrypoint = dockerfile.split("<<'EOF'", 1)[1].split("\nEOF\n", 1)[0]
    assert "runtime|tools|skills|memory|gateway)" in entrypoint
    assert 'exec python -m "services.$service"' in entrypoint
    assert re.search(r"^ENTRYPOINT \[\"ducklm-entrypoint\"\]$", dockerfile, re.MULTILINE)
    assert "PYTHONPATH=/app:/app/gen/python" in dockerfile
    for service in GRPC_SERVICES:
        assert (repo_root() / "services" / service / "__main__.py").is_file()


# -- Kubernetes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def k8s() -> dict[tuple[str, str], dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    assert kustomization["kind"] == "Kustomization"
    objects: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in kustomization["resources"]:
        for document in yaml.safe_load_all((DEPLOY / "k8s" / resource).read_text()):
            assert {"apiVersion", "kind", "metadata"} <= document.keys(), resource
            key = (document["kind"], document["metadata"]["name"])
            assert key not in objects, f"{key} defined twice"
            objects[key] = document
    listed = {path.name for path in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == set(kustomization["resources"]), "every manifest is listed in kustomization.yaml"
    return objects


def config_env(k8s: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    data = k8s[("ConfigMap", "ducklm-config")]["data"]
    assert all(isinstance(value, str) for value in data.values())
    return dict(data)


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def test_k8s_has_a_deployment_and_service_per_process(k8s: dict[tuple[str, str], dict[str, Any]]) -> None:
    kinds = {kind for kind, _ in k8s}
    assert kinds == {"Namespace", "ConfigMap", "Secret", "Deployment", "Service", "PersistentVolumeClaim"}
    for name in (*GRPC_SERVICES, "gateway", "llama-chat", "llama-embedding", "qdrant"):
        deployment, service = k8s[("Deployment", name)], k8s[("Service", name)]
        assert deployment["apiVersion"] == "apps/v1" and service["apiVersion"] == "v1"
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert service["spec"]["selector"].items() <= labels.items()
        named_ports = {port["name"]: port["containerPort"] for port in container(deployment).get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in named_ports, (
                f"{name}: Service targets unknown port {port['targetPort']}"
            )
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            if "persistentVolumeClaim" in volume:
                assert ("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]) in k8s
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in k8s


def test_k8s_grpc_services_probe_grpc_health_on_their_port(
    k8s: dict[tuple[str, str], dict[str, Any]],
) -> None:
    env = config_env(k8s)
    for name in GRPC_SERVICES:
        spec = container(k8s[("Deployment", name)])
        assert spec["args"] == [name]
        ports = {port["name"]: port["containerPort"] for port in spec["ports"]}
        assert ports["grpc"] == bound_port(env, name)
        assert ports["metrics"] == int(env[f"DUCKLM_{name.upper()}_METRICS_ADDRESS"].rsplit(":", 1)[1])
        for probe in ("readinessProbe", "livenessProbe"):
            assert spec[probe]["grpc"] == {"port": ports["grpc"]}, f"{name} {probe}"
        annotations = k8s[("Deployment", name)]["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(ports["metrics"])
        service_ports = {port["name"]: port for port in k8s[("Service", name)]["spec"]["ports"]}
        assert (
            service_ports["grpc"]["port"] == ports["grpc"] and service_ports["grpc"]["appProtocol"] == "grpc"
        )
    gateway = container(k8s[("Deployment", "gateway")])
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/healthz"


def test_k8s_config_and_secrets_feed_every_service(
    k8s: dict[tuple[str, str], dict[str, Any]], tmp_path: Path
) -> None:
    env = config_env(k8s)
    secret = k8s[("Secret", "ducklm-secrets")]["stringData"]
    for name in (*GRPC_SERVICES, "gateway"):
        check_service_variables(name, {**env, "DUCKLM_GATEWAY_TOKEN": "t" * 20})
        spec = container(k8s[("Deployment", name)])
        assert {"configMapRef": {"name": "ducklm-config"}} in spec["envFrom"]
        for variable in spec.get("env", []):
            reference = variable["valueFrom"]["secretKeyRef"]
            assert reference["name"] == "ducklm-secrets" and reference["key"] in secret
        assert "DUCKLM_GRPC_TOKEN" in {variable["name"] for variable in spec["env"]}
    assert [variable["name"] for variable in container(k8s[("Deployment", "gateway")])["env"]] == [
        "DUCKLM_GRPC_TOKEN",
        "DUCKLM_GATEWAY_TOKEN",
        "DUCKLM_APPROVER_TOKEN",
    ]
    # The approver credential reaches the tools service and the gateway only, never the runtime.
    for name in (*GRPC_SERVICES, "gateway"):
        names = {variable["name"] for variable in container(k8s[("Deployment", name)])["env"]}
        assert ("DUCKLM_APPROVER_TOKEN" in names) == (name in ("tools", "gateway")), name
    # Peers are found by their Services' names and ports.
    for key, value in env.items():
        peer = re.fullmatch(
            r"DUCKLM_(RUNTIME|TOOLS|SKILLS|MEMORY|GATEWAY)_(RUNTIME|TOOLS|SKILLS|MEMORY)_ADDRESS", key
        )
        if peer:
            host, port = value.rsplit(":", 1)
            assert host == peer.group(2).lower()
            assert int(port) in {p["port"] for p in k8s[("Service", host)]["spec"]["ports"]}, key
    # The models file reaches the llama-server Services on the port each one listens on.
    models_file = tmp_path / "models.yaml"
    models_file.write_text(k8s[("ConfigMap", "ducklm-models")]["data"]["models.yaml"])
    config = load_models_config(models_file, {})
    for role, name in (("chat", "llama-chat"), ("embedding", "llama-embedding")):
        args = container(k8s[("Deployment", name)])["args"]
        assert config.roles[role].endpoint == f"http://{name}:{args[args.index('--port') + 1]}/v1"
    mounts = container(k8s[("Deployment", "runtime")])["volumeMounts"]
    assert env["DUCKLM_RUNTIME_MODELS_FILE"] in {mount["mountPath"] for mount in mounts}
    # The placeholder gateway token is too short for the gateway to accept.
    assert len(secret["DUCKLM_GATEWAY_TOKEN"]) < 16
