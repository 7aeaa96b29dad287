"""Writes `.env.example` from the services' pydantic `Settings` models, so the list of
`DUCKLM_*` variables cannot drift from what the services read: each field becomes
`DUCKLM_<SERVICE>_<FIELD>` with its default and the comment above it in the model (the one
source of truth). Variables every process reads outside a settings model are listed here.

`make env-example` rewrites the file; tests/doctor/test_env_example.py fails when it is stale.
Every entry is commented out, so copying the file to `.env` changes nothing until a line is
uncommented.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import json
import sys
import textwrap
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from deploy.doctor.setup import SETTINGS_MODELS
from services.common.config import data_dir, repo_root

__all__ = ["PROCESS_VARIABLES", "main", "render"]

# (variable, default, what it does): read by every process or by the launcher and scripts.
PROCESS_VARIABLES: list[tuple[str, str, str]] = [
    ("DUCKLM_DATA_DIR", "data", "Where DuckLM keeps its state; the services' default paths are under it."),
    ("DUCKLM_ENV_FILE", ".env", "The file of variables read at start-up (the environment wins over it)."),
    ("DUCKLM_LOG_LEVEL", "INFO", "Log level of every service (DEBUG, INFO, WARNING, ERROR)."),
    ("DUCKLM_GRPC_TOKEN", "", "Shared token every gRPC call must carry (health stays open); empty: no token."),
    ("DUCKLM_GRPC_TLS_CERT", "", "PEM certificate chain the gRPC services serve TLS with (with DUCKLM_GRPC_TLS_KEY)."),
    ("DUCKLM_GRPC_TLS_KEY", "", "PEM private key for DUCKLM_GRPC_TLS_CERT."),
    ("DUCKLM_GRPC_TLS_CA", "", "PEM CA certificate(s) clients trust; when set, every channel uses TLS."),
    ("DUCKLM_OTEL_ENDPOINT", "", "OTLP/gRPC collector (e.g. http://127.0.0.1:4317) every process sends its traces to; empty: no tracing."),
    *[
        (f"DUCKLM_{service}_METRICS_ADDRESS", "", f"host:port where {service.lower()} serves Prometheus /metrics; empty: off.")
        for service in ("RUNTIME", "TOOLS", "SKILLS", "MEMORY")
    ],
    ("DUCKLM_LLAMA_PORT", "8081", "Port of the chat llama-server `make run` starts (config/models.yaml reads it)."),
    ("DUCKLM_LLAMA_EMBEDDING_PORT", "8082", "Port of the embedding llama-server `make run` starts."),
    ("DUCKLM_MODEL", "", "Shipped chat model by name (smollm2-135m, gemma3-270m; docs/models.md); empty: SmolLM2-135M."),
    ("DUCKLM_MODEL_PATH", "", "GGUF model for the launcher's llama-servers; empty: the cached SmolLM2-135M."),
    ("DUCKLM_EMBEDDING_MODEL_PATH", "", "GGUF embedding model for the launcher's embedding server; empty: all-MiniLM-L6-v2, converted once."),
    ("DUCKLM_APPROVER_TOKEN", "", "The approver credential (only a human's client holds it); empty: `make run` generates one."),
    ("DUCKLM_APPROVER_TOKEN_FILE", "", "A file holding the approver credential, instead of DUCKLM_APPROVER_TOKEN."),
    ("DUCKLM_LLAMA_SERVER", "", "llama-server binary to use; empty: built once per machine into the cache."),
    ("DUCKLM_CACHE_DIR", "~/.cache/ducklm", "Per-machine cache of the llama-server build and the model."),
    ("DUCKLM_BUILD_JOBS", "", "Parallel jobs of the llama-server build; empty: every core."),
    ("DUCKLM_HOME", "", "The checkout `ducklm up` and `ducklm doctor` run from; empty: found from here."),
    ("DUCKLM_IMAGE", "ducklm:latest", "Container image deploy/compose.yaml runs."),
    ("DUCKLM_POSTGRES_PASSWORD", "", "Password of the PostgreSQL container deploy/compose.replicas.yaml starts (docs/scale.md)."),
    ("DUCKLM_POSTGRES_BIN", "", "Folder of PostgreSQL's initdb/pg_ctl/postgres for the tests' cluster; empty: found on PATH or in /usr/lib/postgresql."),
]

_PEER_FIELDS = {f"{peer}_address": f"Where the {peer} service listens (host:port)." for peer in ("runtime", "tools", "skills", "memory")}
_PLAIN_FIELDS = {
    "address": "host:port this service listens on (port 0: any free port).",
    "database": "This service's SQLite file.",
    "database_path": "This service's SQLite file.",
    "host": "Interface the gateway binds.",
    "port": "Port the gateway listens on.",
    "models_file": "Which model serves each role, and the llama-servers `make run` starts.",
    "directive_schema": "JSON schema every model step must match.",
    "system_prompt": "The system prompt at the top of every task's context.",
    "edge_path": "Folder of the edge backend's collections.",
    "qdrant_api_key": "API key of the Qdrant server (backend qdrant).",
    "qdrant_timeout_s": "Seconds each Qdrant call may take.",
    "embed_timeout_s": "Seconds each embedding call to the runtime may take.",
}


def _field_comments(model: type[BaseModel]) -> dict[str, str]:
    """The `# ...` lines right above each field in the model's source, joined into one line."""
    source = textwrap.dedent(inspect.getsource(model))
    lines = source.splitlines()
    found: dict[str, str] = {}
    for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above: list[str] = []
            index = node.lineno - 2
            while index >= 0 and lines[index].strip().startswith("#"):
                above.insert(0, lines[index].strip().lstrip("#").strip())
                index -= 1
            if above:
                found[node.target.id] = " ".join(above)
    return found


def _value(value: Any) -> str:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        for base, shown in ((data_dir(), "data"), (repo_root(), "")):
            if value.is_relative_to(base):
                relative = value.relative_to(base).as_posix()
                return f"{shown}/{relative}" if shown else relative
        return str(value)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value)
    text = str(value)
    return json.dumps(text) if any(c in text for c in " #'\"") else text


def _choices(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " One of: " + ", ".join(str(a) for a in typing.get_args(annotation)) + "."
    return ""


def _entry(variable: str, default: str, description: str) -> list[str]:
    return [f"# {description}", f"# {variable}={default}", ""]


def render() -> str:
    out = [
        "# Every DUCKLM_* variable, with its default. Generated by `make env-example` from the",
        "# services' settings models (deploy/env_example.py); do not edit by hand.",
        "# Copy to .env and uncomment what you change: `make run` and every service read .env,",
        "# and a variable set in the environment wins over it.",
        "",
        "# --- every process ---",
    ]
    for variable, default, description in PROCESS_VARIABLES:
        out += _entry(variable, default, description)
    for service, model in SETTINGS_MODELS.items():
        comments = _field_comments(model)
        module = model.__module__.replace(".", "/") + ".py"
        out.append(f"# --- {service} ({module}) ---")
        for name, field in model.model_fields.items():
            description = comments.get(name) or _PEER_FIELDS.get(name) or _PLAIN_FIELDS.get(name) or name.replace("_", " ").capitalize() + "."
            default = _value(field.get_default(call_default_factory=True))
            out += _entry(f"DUCKLM_{service.upper()}_{name.upper()}", default, description + _choices(field.annotation))
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write (or --check) .env.example from the settings models.")
    parser.add_argument("--check", action="store_true", help="exit 1 if .env.example is not up to date")
    args = parser.parse_args(argv)
    path = repo_root() / ".env.example"
    text = render()
    if args.check:
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            print(f"{path.name} is out of date: run `make env-example`", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
