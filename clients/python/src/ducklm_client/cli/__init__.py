"""`ducklm`: DuckLM from the terminal, on the Python client.

    ducklm up                          start everything (the same as `make run`)
    ducklm chat ["MESSAGE"]            talk; replies stream; approvals are asked y/n
                                       (-s INSTRUCTIONS, -c to continue the latest chat)
    ducklm tasks | events TASK | replay TASK | cancel TASK
    ducklm approvals | approve ID | deny ID
    ducklm skills list|show|validate|proposals|promote|reject
    ducklm memory list|search|remember|promote|forget
    ducklm health
    ducklm doctor [--json]             check models, services and this machine; a fix per failure

Addresses come from DUCKLM_RUNTIME_ADDRESS, DUCKLM_TOOLS_ADDRESS, ... or --runtime, --tools, ...
Task and approval ids may be shortened to any unique prefix. NO_COLOR=1 turns colour off.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TextIO

from ducklm_client.cli import commands
from ducklm_client.cli.chat import ChatSession
from ducklm_client.cli.doctor import doctor
from ducklm_client.cli.ids import resolve_approval, resolve_task
from ducklm_client.cli.style import Style
from ducklm_client.cli.up import up
from ducklm_client.config import SERVICES, Connection
from ducklm_client.errors import DuckLMError
from ducklm_client.models import TaskStatus
from ducklm_client.sync import Client

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace, Client, TextIO], int]
MODEL_NAME = "ducklm"
BY_HELP = "who decides (default: your user name); approvals record the approver credential instead"


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ducklm", description="DuckLM from the terminal.")
    for service in SERVICES:
        parser.add_argument(
            f"--{service}",
            metavar="HOST:PORT",
            dest=f"{service}_address",
            help=f"the {service} service (default: $DUCKLM_{service.upper()}_ADDRESS or local)",
        )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    chat = sub.add_parser("chat", help="talk to DuckLM (interactive without MESSAGE)")
    chat.add_argument("message", nargs="?", help="send one message and exit after the reply")
    chat.add_argument("--task", default="", help="continue this task (an id or a unique prefix)")
    chat.add_argument("-c", "--continue", dest="continue_latest", action="store_true", help="continue the latest chat")
    chat.add_argument("-s", "--system", default="", help="instructions for the chat, sent with the first message")
    chat.add_argument(
        "-m", "--model", default=MODEL_NAME, help="the model: DuckLM picks its own per role (config/models.yaml)"
    )
    chat.add_argument("--skill", default="", help="load this skill for the first message")
    chat.add_argument("--by", default=_default_user(), help=BY_HELP)

    up_parser = sub.add_parser("up", help="build what is missing and start the whole stack (like `make run`)")
    up_parser.add_argument("--port", type=int, help="the gateway's port (default 8080)")
    up_parser.add_argument("--data-dir", help="where DuckLM keeps its state (default ./data)")
    up_parser.add_argument("--timeout", type=float, help="seconds each process may take to become healthy")

    tasks = sub.add_parser("tasks", help="list tasks, newest first")
    tasks.add_argument("--status", choices=[s.value for s in TaskStatus if s is not TaskStatus.UNSPECIFIED])
    tasks.add_argument("--limit", type=int, default=20)
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(run=commands.tasks)

    events = sub.add_parser("events", help="show a task's events")
    events.add_argument("task")
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    events.add_argument("--after", type=int, default=0, help="only events after this seq")
    events.add_argument("--tokens", action="store_true", help="with --follow, show live model tokens too")
    events.add_argument("--json", action="store_true", help="one JSON object per line")
    events.set_defaults(run=commands.events)

    cancel = sub.add_parser("cancel", help="cancel a task")
    cancel.add_argument("task")
    cancel.add_argument("--reason", default="cancelled from the command line")
    cancel.set_defaults(run=commands.cancel)

    replay = sub.add_parser(
        "replay", help="re-run a task's recorded model outputs; exit 1 if the actions differ"
    )
    replay.add_argument("task")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(run=commands.replay)

    approvals = sub.add_parser("approvals", help="list pending approvals")
    approvals.add_argument("--all", action="store_true", help="decided ones too")
    approvals.add_argument("--task", help="only this task's")
    approvals.add_argument("--json", action="store_true")
    approvals.set_defaults(run=commands.approvals)

    approve = sub.add_parser("approve", help="allow the action an approval names")
    approve.add_argument("approval")
    approve.add_argument(
        "--scope",
        choices=["once", "task", "task_pattern"],
        default="once",
        help="once; the exact action for the task; or every call of its shown pattern for the task",
    )
    approve.add_argument(
        "--ttl", type=int, default=0, help="seconds until it expires (default: the service's)"
    )
    approve.add_argument("--reason", default="")
    approve.add_argument("--by", default=_default_user(), help=BY_HELP)
    approve.set_defaults(run=commands.approve)

    deny = sub.add_parser("deny", help="refuse the action an approval names")
    deny.add_argument("approval")
    deny.add_argument("--reason", default="")
    deny.add_argument("--by", default=_default_user(), help=BY_HELP)
    deny.set_defaults(run=commands.deny)

    _add_skills(sub.add_parser("skills", help="skills and skill proposals"))
    _add_memory(sub.add_parser("memory", help="vector memory"))

    health = sub.add_parser("health", help="is each service serving?")
    health.set_defaults(run=commands.health)

    checks = sub.add_parser("doctor", help="check the set-up: each model role, every service, this machine")
    checks.add_argument("--json", action="store_true", help="one JSON object instead of the checklist")
    checks.add_argument("--only", action="append", choices=["config", "models", "services", "machine"])
    checks.add_argument("--role", action="append", help="with the models section, only this role")
    return parser


def _add_skills(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="skills_command", required=True, metavar="SUBCOMMAND")
    listing = sub.add_parser("list", help="the skills loaded, and those that failed validation")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=commands.skills_list)
    show = sub.add_parser("show", help="a skill with its instructions")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=commands.skills_show)
    validate = sub.add_parser(
        "validate", help="validate a SKILL.md or skill folder here (or --name: on the server)"
    )
    validate.add_argument("target", help="a SKILL.md file or a skill folder (a skill name with --name)")
    validate.add_argument(
        "--name", action="store_true", help="TARGET names a skill in the server's skills folder"
    )
    validate.add_argument(
        "--strict", action="store_true", help="the spec alone: extra front-matter keys and name/folder mismatches fail"
    )
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(run=commands.skills_validate)
    proposals = sub.add_parser("proposals", help="skill proposals from reflection")
    proposals.add_argument("--state", choices=["pending", "invalid", "promoted", "rejected"])
    proposals.add_argument("--json", action="store_true")
    proposals.set_defaults(run=commands.skills_proposals)
    promote = sub.add_parser("promote", help="turn a valid proposal into a skill")
    promote.add_argument("proposal")
    promote.add_argument("--by", default=_default_user(), help=BY_HELP)
    promote.set_defaults(run=commands.skills_promote)
    reject = sub.add_parser("reject", help="reject a proposal")
    reject.add_argument("proposal")
    reject.add_argument("--reason", default="")
    reject.add_argument("--by", default=_default_user(), help=BY_HELP)
    reject.set_defaults(run=commands.skills_reject)


def _add_memory(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="memory_command", required=True, metavar="SUBCOMMAND")
    search = sub.add_parser("search", help="memories nearest a text")
    search.add_argument("query")
    search.add_argument("--top-k", type=int, default=5)
    search.add_argument("--kind", default="")
    search.add_argument("--tag", action="append", help="only memories with this tag (repeatable)")
    search.add_argument("--json", action="store_true")
    search.set_defaults(run=commands.memory_search)
    remember = sub.add_parser("remember", help="state a memory (long-term unless --task or --project)")
    remember.add_argument("text")
    remember.add_argument("--kind", default="note")
    remember.add_argument("--tag", action="append", help="a tag (repeatable)")
    remember.add_argument("--task", default="", help="keep it in this task's (conversation's) scope")
    remember.add_argument("--project", default="", help="keep it in this project's scope")
    remember.add_argument("--json", action="store_true")
    remember.set_defaults(run=commands.memory_remember)
    listing = sub.add_parser("list", help="list memories, newest first")
    _add_memory_conditions(listing)
    listing.add_argument("--page-size", type=int, default=50)
    listing.add_argument("--page-token", default="", help="next_page_token printed by the previous page")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=commands.memory_list)
    promote = sub.add_parser("promote", help="keep a conversation's memory long-term (or in a project)")
    promote.add_argument("memory")
    promote.add_argument("--project", default="", help="promote into this project instead")
    promote.set_defaults(run=commands.memory_promote)
    forget = sub.add_parser(
        "forget", help="delete a memory by id, the memories matching conditions, or a whole scope (--confirm)"
    )
    forget.add_argument("memory", nargs="?", default="", help="the memory's id")
    _add_memory_conditions(forget)
    forget.add_argument(
        "--confirm", default="",
        help='forget the whole --scope: name it again ("long_term", "task:<id>" or "project:<name>")',
    )
    forget.set_defaults(run=commands.memory_forget)


def _add_memory_conditions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scope", choices=["task", "long_term", "project"], default="")
    parser.add_argument("--task", default="", help="only this task's memories")
    parser.add_argument("--project", default="", help="only this project's memories")
    parser.add_argument("--kind", default="")
    parser.add_argument("--tag", action="append", help="only memories with this tag (repeatable)")
    parser.add_argument("--text", default="", help="only memories whose text contains this")


def _ask(question: str) -> str | None:
    try:
        return input(question)
    except EOFError:
        return None


def _chat(args: argparse.Namespace, client: Client, out: TextIO, err: TextIO) -> int:
    if args.model != MODEL_NAME:
        raise ValueError(
            f"-m {args.model}: DuckLM chooses its model per role in config/models.yaml "
            f"(the `chat` role); -m takes only {MODEL_NAME!r}"
        )
    task_id = args.task
    if args.continue_latest and not task_id:
        latest = client.list_tasks(limit=1)
        if not latest:
            raise ValueError("-c: there is no chat to continue yet")
        task_id = latest[0].id
    session = ChatSession(
        client,
        out,
        err,
        _ask,
        decided_by=args.by,
        task_id=task_id,
        out_style=Style.for_stream(out),
        err_style=Style.for_stream(err),
        instructions=args.system,
    )
    return session.run(args.message, skill=args.skill)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            options = {"--port": args.port, "--data-dir": args.data_dir, "--timeout": args.timeout}
            return up(
                [str(part) for name, value in options.items() if value is not None for part in (name, value)],
                err,
            )
        if args.command == "doctor":
            checks = [
                *(["--json"] if args.json else []),
                *(f"--only={section}" for section in args.only or ()),
                *(f"--role={role}" for role in args.role or ()),
            ]
            return doctor(checks, {s: getattr(args, f"{s}_address") for s in SERVICES})
        connection = replace(
            Connection.from_env().with_addresses(**{s: getattr(args, f"{s}_address") for s in SERVICES}),
            approver_via="cli",
        )
        with Client(connection) as client:
            # Every id argument may be a unique prefix of the id.
            if getattr(args, "task", None):
                args.task = resolve_task(client, args.task, known_only=args.command != "memory")
            if getattr(args, "approval", None):
                args.approval = resolve_approval(client, args.approval)
            if args.command == "chat":
                return _chat(args, client, out, err)
            run: Command = args.run
            return run(args, client, out)
    except DuckLMError as exc:
        err.write(f"ducklm: {exc}\n")
        return 1
    except (OSError, ValueError, RuntimeError) as exc:
        err.write(f"ducklm: {exc}\n")
        return 2
    except KeyboardInterrupt:
        err.write("\ninterrupted (a task that was running goes on; see `ducklm tasks`)\n")
        return 130
