"""Loads a service's pydantic settings from `DUCKLM_<SERVICE>_<FIELD>` environment variables.

Defaults live on the model, so a service runs locally with no file and no variable set. A `.env`
file at the top of the checkout (or `$DUCKLM_ENV_FILE`), when present, fills in variables the
environment does not set; the environment always wins. `.env.example` lists every variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from dotenv import dotenv_values
from pydantic import BaseModel, ValidationError

__all__ = ["ConfigError", "apply_env_file", "data_dir", "env_file", "load_settings", "repo_root"]

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class ConfigError(Exception):
    """A setting from the environment is malformed; the message names the variable."""


def repo_root() -> Path:
    """The checkout this code runs from (where config/ and skills/ ship)."""
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Where DuckLM keeps state: `DUCKLM_DATA_DIR`, default `./data` under the current directory."""
    return Path(os.environ.get("DUCKLM_DATA_DIR", "data")).resolve()


def env_file() -> Path:
    """The `.env` file read at start-up: `$DUCKLM_ENV_FILE`, default `.env` in the checkout."""
    return Path(os.environ.get("DUCKLM_ENV_FILE") or repo_root() / ".env")


def apply_env_file(path: Path | None = None) -> dict[str, str]:
    """Puts the file's `KEY=value` lines into `os.environ` where the variable is not set yet, and
    returns those it set. A missing file sets nothing."""
    path = env_file() if path is None else path
    if not path.is_file():
        return {}
    applied = {
        key: value
        for key, value in dotenv_values(path).items()
        if value is not None and key not in os.environ
    }
    os.environ.update(applied)
    return applied


def load_settings(
    model: type[SettingsT], service: str, environ: Mapping[str, str] | None = None
) -> SettingsT:
    """Builds `model` from variables named `DUCKLM_<SERVICE>_<FIELD>` (upper case).

    Lists and dicts are read as JSON; everything else as the field's own type. Without `environ`
    the process environment is used, completed from the `.env` file first.
    """
    if environ is None:
        apply_env_file()
    env = os.environ if environ is None else environ
    prefix = f"DUCKLM_{service.upper()}_"
    values: dict[str, object] = {}
    for name, field in model.model_fields.items():
        key = prefix + name.upper()
        if key not in env:
            continue
        raw = env[key]
        annotation = str(field.annotation)
        if any(word in annotation for word in ("list", "dict", "tuple")):
            try:
                values[name] = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{key} must be JSON ({exc.msg})") from exc
        else:
            values[name] = raw
    try:
        return model(**values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings for {service}: {problems}") from exc
