"""The edge translation of an event's typed payload (events.py) into its proto message, field
for field (the names are the same by contract; tests/runtime/test_events.py checks it).

Used by the servicer only: domain code never sees the generated classes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from services.runtime import events as ev

__all__ = ["PayloadMismatch", "fill_payload"]

_STRUCT = "google.protobuf.Struct"
_VALUE = "google.protobuf.Value"


class PayloadMismatch(Exception):
    """A stored value the proto field cannot hold (a wrong type in an old log)."""


def fill_payload(target: Message, payload: Any) -> None:
    """Sets `target`'s fields from the dataclass `payload` (None fields stay unset)."""
    target.SetInParent()
    try:
        _fill(target, payload)
    except (TypeError, ValueError, json_format.ParseError) as exc:
        raise PayloadMismatch(str(exc)) from exc


def _fill(target: Message, payload: Any) -> None:
    fields = target.DESCRIPTOR.fields_by_name
    for item in dataclasses.fields(payload):
        value = getattr(payload, item.name)
        if value is None:
            continue
        name = ev.stored_key(item.name)
        field = fields[name]
        if field.message_type is None:
            if field.is_repeated:
                getattr(target, name).extend(value)
            else:
                setattr(target, name, value)
            continue
        kind = field.message_type.full_name
        if field.is_repeated:
            for element in value:
                _fill(getattr(target, name).add(), element)
        elif kind == _STRUCT:
            if not isinstance(value, dict):
                raise TypeError(f"{name} must be an object, not {type(value).__name__}")
            getattr(target, name).update(value)
        elif kind == _VALUE:
            json_format.ParseDict(value, getattr(target, name))
        else:
            sub = getattr(target, name)
            sub.SetInParent()
            _fill(sub, value)
