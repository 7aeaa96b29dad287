"""The chat models DuckLM ships by name (`make run MODEL=gemma3-270m`, `DUCKLM_MODEL=…`,
`run_eval.py --model gemma3-270m`): for each, the script that fetches its GGUF once per machine,
the name the chat role reports, its licence, and what its llama-server needs beyond
config/models.yaml (e.g. a chat template the GGUF lacks).

It only rewrites a parsed models.yaml and runs a fetch script; it never starts a server and
never downloads anything for a model nobody selected.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common.config import ConfigError, repo_root

__all__ = ["DEFAULT_MODEL", "NAMED_MODELS", "NamedModel", "apply_named_model", "fetch_named_model", "named_model", "named_model_for_path"]


@dataclass(frozen=True)
class NamedModel:
    name: str
    # scripts/<fetch_script> prints the GGUF's path on its last line (cached once per machine).
    fetch_script: str
    # The GGUF's file name in the cache, to recognise the model when it is given by path.
    file_name: str
    # What the chat role calls the model (shown in logs and traces).
    model: str
    licence: str
    # Extra llama-server arguments for the chat server (appended to config/models.yaml's).
    server_args: tuple[str, ...] = ()
    # Chat role fields overridden for this model (e.g. extra_body sampling settings).
    role: dict[str, Any] = field(default_factory=dict)


# Gemma 3's vocabulary has a token for every run of 1-31 newlines (ids 107-137), of 2-31 spaces
# (138-167) and of 1-31 tabs (255968-255998). llama-server's JSON-schema grammar lets
# `"\n"{1,2} [ \t]{0,20}` stand between any two JSON tokens, and under a repeat penalty the model
# hops from one whitespace token to another instead of writing the next key: 20 characters of
# indentation before every key, until max_tokens. Without the penalty it mostly writes compact
# JSON, so this model gets none (repeat_penalty 1.0); and in calls under a JSON schema those
# tokens are banned, so the grammar's gaps can hold one space at most. JSON never needs them (a
# newline or tab inside a string is escaped); plain text keeps them (an answer stops on a newline).
_GEMMA3_WHITESPACE_RUNS = [*range(107, 168), *range(255968, 255999)]

NAMED_MODELS: dict[str, NamedModel] = {
    model.name: model
    for model in (
        NamedModel(
            name="smollm2-135m", fetch_script="fetch_model.sh", file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            model="SmolLM2-135M-Instruct", licence="Apache-2.0",
        ),
        NamedModel(
            name="gemma3-270m", fetch_script="fetch_gemma.sh", file_name="gemma-3-270m.Q4_K_M.gguf",
            model="gemma-3-270m", licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
            # The GGUF (the pretrained google/gemma-3-270m) carries no chat template, so
            # llama-server would fall back to ChatML, whose <|im_start|> markers are plain text
            # to Gemma's tokenizer; Gemma's own turn markers are special tokens it knows.
            server_args=("--chat-template", "gemma"),
            role={"extra_body": {"repeat_penalty": 1.0},
                  "json_extra_body": {"logit_bias": [[token, False] for token in _GEMMA3_WHITESPACE_RUNS]}},
        ),
    )
}
DEFAULT_MODEL = "smollm2-135m"


def named_model(name: str) -> NamedModel:
    """The registered model called `name`; a clear error naming the choices otherwise."""
    try:
        return NAMED_MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; the shipped models are {', '.join(NAMED_MODELS)}") from None


def named_model_for_path(path: Path) -> NamedModel | None:
    """The registered model whose GGUF this is (by file name), so a path gets its flags too."""
    return next((model for model in NAMED_MODELS.values() if model.file_name == path.name), None)


def fetch_named_model(model: NamedModel) -> Path:
    """Runs the model's fetch script (it downloads only the first time) and returns the GGUF."""
    script = repo_root() / "scripts" / model.fetch_script
    result = subprocess.run(["bash", str(script)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(result.stdout.strip().splitlines()[-1])


def apply_named_model(raw: dict[str, Any], model: NamedModel, path: Path) -> dict[str, Any]:
    """`raw` (a parsed models.yaml) with its chat role and chat server set to `model` at `path`."""
    chat = raw["roles"]["chat"]
    chat["model"] = model.model
    for key, value in model.role.items():
        chat[key] = {**chat.get(key, {}), **value} if isinstance(value, dict) else value
    server = raw.setdefault("servers", {}).get("chat")
    if server is not None:
        server["model_path"] = str(path)
        server["args"] = [*server.get("args", []), *model.server_args]
    return raw
