"""`ducklm chat`: a conversation in the terminal. The reply streams as the model writes it; when
the assistant wants to run a gated tool, the terminal asks y/n and the answer is sent as an
approval (or denial) before the conversation goes on.

Tool calls, errors and notes go to stderr, the assistant's words to stdout. On a terminal, a
status line (spinner, what DuckLM is doing, seconds spent) fills the wait, and colour marks the
reply, tools and errors (NO_COLOR turns colour off).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from ducklm.common.v1 import common_pb2

from ducklm_client.cli.render import compact_json
from ducklm_client.cli.style import Spinner, Style
from ducklm_client.convert import struct
from ducklm_client.models import Event, TaskStatus
from ducklm_client.sync import Client

__all__ = ["ChatSession", "TurnEnd"]

PROMPT = "you> "
REPLY_PREFIX = "duck> "
QUIT_WORDS = frozenset({"/quit", "/exit", "/q"})


@dataclass
class TurnEnd:
    """How a turn's event stream ended."""

    status: str = ""
    last_seq: int = 0
    # The approval_requested event's data, when the task waits for one.
    approval: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChatSession:
    client: Client
    out: TextIO
    err: TextIO
    # Asks the human a question; returns their answer, or None when input has ended.
    ask: Callable[[str], str | None]
    decided_by: str
    task_id: str = ""
    # How stdout (the reply) and stderr (notes, the status line) look; plain by default.
    out_style: Style = field(default_factory=Style)
    err_style: Style = field(default_factory=Style)
    # Sent with the first message (`-s`), after it, so the task's title is still the message.
    instructions: str = ""
    _spinner: Spinner | None = None
    _line_open: bool = False
    _call_reply: str = ""
    _last_call_reply: str = ""

    def run(self, first_message: str | None, *, skill: str = "") -> int:
        """One turn for `first_message`, or an interactive loop when it is None. Returns the exit
        code: 0, or 1 when the last turn failed, or 3 when it was left waiting for an approval."""
        status = ""
        message = first_message
        while True:
            if message is None:
                message = self.ask(PROMPT)
                if message is None or message.strip() in QUIT_WORDS:
                    self.out.write("\n" if message is None else "")
                    return 0
                if not message.strip():
                    message = None
                    continue
            if self.instructions:
                message = f"{message}\n\nInstructions:\n{self.instructions}"
                self.instructions = ""
            status = self.turn(message, skill=skill)
            skill = ""
            if first_message is not None:
                break
            message = None
        if status == TaskStatus.FAILED:
            return 1
        return 3 if status == TaskStatus.WAITING_APPROVAL else 0

    def turn(self, message: str, *, skill: str = "") -> str:
        """Sends one message and follows the task until it rests, answering approvals."""
        end = self._show(self.client.stream_chat(message, task_id=self.task_id, skill=skill))
        while end.status == TaskStatus.WAITING_APPROVAL and end.approval:
            if not self._decide(end.approval):
                return end.status
            end = self._show(self.client.stream_until_rest(self.task_id, after_seq=end.last_seq))
        if end.status == TaskStatus.FAILED:
            task = self.client.get_task(self.task_id)
            self._note(f"task {self.task_id} failed: {task.error or 'see `ducklm events ' + self.task_id + '`'}", "red")
        return end.status

    def _note(self, text: str, *styles: str) -> None:
        """A line on stderr, with the status line cleared first."""
        if self._spinner is not None:
            self._spinner.clear()
        self.err.write(self.err_style.paint(text, *styles) + "\n")
        self.err.flush()

    def _working(self, label: str) -> None:
        if self._spinner is None:
            self._spinner = Spinner(self.err, self.err_style)
        if self._line_open:
            self._spinner.status(label)
            return
        self._spinner.start(label)
        self._spinner.status(label)

    def _quiet(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()

    def _decide(self, approval: dict[str, Any]) -> bool:
        """Asks y/n for an approval and sends the decision; False when input has ended."""
        self._quiet()
        approval_id = str(approval.get("approval_id", ""))
        question = (
            f"DuckLM wants to run {approval.get('tool')} {compact_json(approval.get('arguments', {}), 400)}\n"
            f"Allow it? [y/N] "
        )
        answer = self.ask(question)
        if answer is None:
            self._note(f"\nleft waiting: decide later with `ducklm approve {approval_id}` or `ducklm deny {approval_id}`")
            return False
        if answer.strip().lower() in ("y", "yes"):
            self.client.approve(approval_id, reason="approved in the terminal")
            self.err.write("  approved; continuing…\n")
        else:
            self.client.deny(approval_id, reason="denied in the terminal")
            self.err.write("  denied; continuing…\n")
        return True

    # -- showing events ----------------------------------------------------------------------

    def _show(self, events: Iterable[Event]) -> TurnEnd:
        end = TurnEnd()
        self._working("thinking…")
        try:
            for event in events:
                if not self.task_id:
                    self.task_id = event.task_id
                    self._note(f"(task {event.task_id})", "dim")
                end.last_seq = max(end.last_seq, event.seq)
                self._on_event(event, end)
        finally:
            self._quiet()
        self._close_line()
        self.out.flush()
        self.err.flush()
        return end

    def _close_line(self) -> None:
        if self._line_open:
            self.out.write("\n")
            self.out.flush()
            self._line_open = False

    def _on_event(self, event: Event, end: TurnEnd) -> None:
        match event.payload:
            case common_pb2.ModelToken(reply=reply):
                self._on_token(reply)
            case common_pb2.ModelCall():
                self._last_call_reply, self._call_reply = self._call_reply, ""
            case common_pb2.AssistantMessage(text=text):
                self._on_message(text)
            case common_pb2.ToolCall(tool=tool, arguments=arguments):
                self._close_line()
                self._note(f"  [tool] {tool} {compact_json(struct(arguments))}", "cyan")
                self._working(f"running {tool}…")
            case common_pb2.ToolResult(ok=ok, error=error):
                self._close_line()
                self._note(f"  [tool] {'ok' if ok else 'failed: ' + error}", "green" if ok else "red")
                self._working("thinking…")
            case common_pb2.SkillUsed(skill=skill):
                self._note(f"  [skill] {skill}", "cyan")
            case common_pb2.ApprovalRequested() as asked:
                self._close_line()
                self._quiet()
                end.approval = {
                    "approval_id": asked.approval_id, "tool": asked.tool, "arguments": struct(asked.arguments),
                }
            case common_pb2.Error(code=code, message=message):
                self._close_line()
                self._note(f"  [error] {code}: {message}", "red")
            case common_pb2.StatusChanged(to=to):
                end.status = to
            case _:
                pass

    def _on_token(self, delta: str) -> None:
        if not delta:
            return
        if self._line_open and not self._call_reply:
            # A new model call began writing a reply (the last one was repaired): start afresh.
            self._close_line()
        if not self._line_open:
            self._quiet()  # the reply takes the line from the status
            self.out.write(self.out_style.paint(REPLY_PREFIX, "bold", "yellow"))
            self._line_open = True
        self.out.write(delta)
        self.out.flush()
        self._call_reply += delta

    def _on_message(self, text: str) -> None:
        streamed = self._last_call_reply
        self._last_call_reply = ""
        if self._line_open and streamed and text.startswith(streamed):
            self.out.write(text[len(streamed) :])
        else:
            self._close_line()
            self._quiet()
            self.out.write(self.out_style.paint(REPLY_PREFIX, "bold", "yellow") + text)
            self._line_open = True
        self._close_line()
