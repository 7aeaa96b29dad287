"""How `ducklm` looks and what it accepts: colour only on a terminal and never with NO_COLOR, a
live status line while a turn works, task ids shortened to a unique prefix, one line per task in
`ducklm tasks`, and chat's -s / -m / -c options."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest
from ducklm.common.v1 import common_pb2
from ducklm_client import convert
from ducklm_client.cli.chat import ChatSession
from ducklm_client.cli.ids import IdError, _pick
from ducklm_client.cli.style import Style
from ducklm_client.models import Event
from ducklm_client.sync import Client
from google.protobuf import json_format

from tests.clients.conftest import ScriptedStack, connect, ducklm


class Terminal(io.StringIO):
    """A terminal in memory: says it is a tty, and signals once a status line was drawn."""

    def __init__(self) -> None:
        super().__init__()
        self.drawn = threading.Event()

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if "thinking…" in text:
            self.drawn.set()
        return super().write(text)


def event(kind: str, seq: int, **data: Any) -> Event:
    """An event as the runtime sends it (typed payload and its plain copy), read by the client."""
    message = common_pb2.Event(task_id="t" * 32, seq=seq, type=f"EVENT_TYPE_{kind.upper()}")
    json_format.ParseDict(data, getattr(message, kind))
    message.data.update(data)
    return convert.event(message)


class SlowClient:
    """A turn that waits, before it answers, until the status line has been drawn."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal

    def stream_chat(self, message: str, *, task_id: str = "", skill: str = "") -> Iterator[Event]:
        yield event("task_created", 1, message=message)
        assert self.terminal.drawn.wait(10), "the status line was never drawn"
        yield event("model_token", 0, reply="Quack")
        yield event("model_call", 2, usage={})
        yield event("assistant_message", 3, text="Quack")
        yield event("status_changed", 4, **{"from": "running", "to": "completed"})


def test_colour_follows_the_terminal_and_no_color() -> None:
    tty = Terminal()
    assert Style.for_stream(tty, {"TERM": "xterm"}) == Style(colour=True, live=True)
    assert Style.for_stream(tty, {"TERM": "xterm", "NO_COLOR": "1"}) == Style(colour=False, live=True)
    assert Style.for_stream(tty, {"TERM": "dumb"}) == Style(colour=False, live=False)
    assert Style.for_stream(io.StringIO(), {"TERM": "xterm"}) == Style(colour=False, live=False)
    assert Style.for_stream(io.StringIO(), {"FORCE_COLOR": "1"}).colour
    assert not Style.for_stream(io.StringIO(), {"FORCE_COLOR": "1", "NO_COLOR": "x"}).colour
    assert Style(colour=False).paint("duck> ", "bold") == "duck> "
    assert Style(colour=True).paint("duck> ", "bold", "yellow") == "\x1b[1;33mduck> \x1b[0m"


def test_a_status_line_fills_the_wait_and_the_reply_is_coloured() -> None:
    err, out = Terminal(), Terminal()
    session = ChatSession(
        cast(Client, SlowClient(err)),
        out,
        err,
        lambda question: None,
        decided_by="me",
        out_style=Style(colour=True, live=True),
        err_style=Style(colour=True, live=True),
    )
    assert session.run("Quack?") == 0
    shown = err.getvalue()
    assert "thinking…" in shown and "\r\x1b[K" in shown
    assert shown.endswith("\r\x1b[K"), "the status line is cleared when the turn ends"
    assert out.getvalue() == "\x1b[1;33mduck> \x1b[0mQuack\n"


def test_a_prefix_must_name_one_id() -> None:
    ids = ["abc123" + "0" * 26, "abd456" + "0" * 26, "ffff" + "1" * 28]
    assert _pick("task", "abc", ids) == ids[0]
    with pytest.raises(IdError, match="matches 2 task ids"):
        _pick("task", "ab", ids)
    with pytest.raises(IdError, match="no task id starts with '99'"):
        _pick("task", "99", ids)


async def test_prefixes_options_and_one_line_titles(scripted: ScriptedStack) -> None:
    env = {**scripted.client_env(), "NO_COLOR": "1"}
    scripted.script([{"action": "respond", "message": "Bonjour."}])
    said = await ducklm("chat", "-s", "Answer in French.\nBe brief.", "Say hello", env=env)
    assert said.code == 0, said.stderr
    assert "duck> Bonjour." in said.stdout and "\x1b[" not in said.stdout + said.stderr
    async with connect(scripted.stack) as client:
        task = (await client.list_tasks(limit=1))[0]
        events = await client.list_events(task.id)
    message = next(e.data["text"] for e in events if e.type == "user_message")
    assert message.startswith("Say hello") and "Answer in French." in message

    listed = await ducklm("tasks", "--limit", "5", env=env)
    line = next(line for line in listed.stdout.splitlines() if line.startswith(task.id))
    assert "Say hello Instructions: Answer in French. Be brief." in line, "the title stays on one line"

    shown = await ducklm("events", task.id[:8], env=env)
    assert shown.code == 0, shown.stderr
    assert "assistant_message" in shown.stdout and "Bonjour." in shown.stdout

    scripted.script([{"action": "respond", "message": "Encore bonjour."}])
    again = await ducklm("chat", "-c", "Once more", env=env)
    assert again.code == 0, again.stderr
    async with connect(scripted.stack) as client:
        assert (await client.get_task(task.id)).last_reply == "Encore bonjour."

    unknown = await ducklm("events", "zzzz", env=env)
    assert unknown.code == 1 and "no task id starts with 'zzzz'" in unknown.stderr
    model = await ducklm("chat", "-m", "gpt-4o", "hi", env=env)
    assert model.code == 2 and "config/models.yaml" in model.stderr
