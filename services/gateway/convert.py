"""Proto messages to the JSON the REST API returns (snake_case, enums as short lowercase words)."""

from __future__ import annotations

from typing import Any

from ducklm.common.v1 import common_pb2
from ducklm.runtime.v1 import runtime_pb2
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

__all__ = ["task_json", "event_json", "enum_word"]


def enum_word(enum: Any, value: int, prefix: str) -> str:
    return str(enum.Name(value)).removeprefix(prefix).lower()


def _time(stamp: Timestamp) -> str | None:
    return stamp.ToJsonString() if stamp.seconds or stamp.nanos else None


def task_json(task: runtime_pb2.Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": enum_word(common_pb2.TaskStatus, task.status, "TASK_STATUS_"),
        "title": task.title,
        "create_time": _time(task.create_time),
        "update_time": _time(task.update_time),
        "last_reply": task.last_reply,
        "error": task.error,
        "steps": task.steps,
        "usage": {
            "prompt_tokens": task.usage.prompt_tokens,
            "completion_tokens": task.usage.completion_tokens,
            "cached_prompt_tokens": task.usage.cached_prompt_tokens,
        },
        "pending_approval_id": task.pending_approval_id,
    }


def event_json(event: common_pb2.Event) -> dict[str, Any]:
    return {
        "task_id": event.task_id,
        "seq": event.seq,
        "type": enum_word(common_pb2.EventType, event.type, "EVENT_TYPE_"),
        "create_time": _time(event.create_time),
        "data": json_format.MessageToDict(event.data),
    }
