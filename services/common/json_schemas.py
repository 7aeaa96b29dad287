"""JSON Schema validators compiled once per schema and reused (a validator is costly to build
and the same step schemas come back every step).

Schemas are keyed by their canonical JSON text, so equal schemas built anew share a validator.
Holds no schema of its own and must never change the schemas it is given.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator

__all__ = ["validator_for"]

# Distinct schemas kept compiled: a step's schema varies with the tools, skills and actions offered.
CACHED_VALIDATORS = 512


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A Draft 2020-12 validator of `schema`, built the first time that schema is seen."""
    # orjson: the key is made on every parse, and the standard module took ten times as long.
    return _compiled(orjson.dumps(schema, option=orjson.OPT_SORT_KEYS))


@lru_cache(maxsize=CACHED_VALIDATORS)
def _compiled(text: bytes) -> Draft202012Validator:
    return Draft202012Validator(json.loads(text))
