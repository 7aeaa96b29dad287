"""Small conversions between protobuf well-known types and plain Python values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

__all__ = ["from_struct", "from_timestamp", "to_struct", "to_timestamp", "utc_now"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_struct(value: dict[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if value:
        struct.update(value)
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict; whole-number floats stay floats (JSON numbers have one type)."""
    return json_format.MessageToDict(struct)


def to_timestamp(value: datetime | None) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    if value is not None:
        stamp.FromDatetime(value.astimezone(UTC))
    return stamp


def from_timestamp(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC)
