"""JSON Schema validators compiled once per schema and reused (a validator is costly to build
and the same step schemas come back every step).

Schemas are keyed by their canonical JSON text, so equal schemas built anew share a validator.
Holds no schema of its own and must never change the schemas it is given.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["validator_for"]

# Distinct schemas kept compiled: a step's schema varies with the tools, skills and actions offered.
CACHED_VALIDATORS = 512


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A Draft 2020-12 validator of `schema`, built the first time that schema is seen."""
    return _compiled(json.dumps(schema, sort_keys=True, ensure_ascii=False))


@lru_cache(maxsize=CACHED_VALIDATORS)
def _compiled(text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(text))
