"""The `ducklm` subcommands other than chat and up: each takes the parsed arguments, a `Client`
and the output stream, prints, and returns the exit code."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from ducklm_client.cli.render import event_line, print_json, table, when
from ducklm_client.models import Memory
from ducklm_client.sync import Client

__all__ = [
    "approvals",
    "approve",
    "cancel",
    "deny",
    "events",
    "health",
    "memory_forget",
    "memory_list",
    "memory_promote",
    "memory_remember",
    "memory_search",
    "replay",
    "skills_list",
    "skills_promote",
    "skills_proposals",
    "skills_reject",
    "skills_show",
    "skills_validate",
    "tasks",
]


def tasks(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    found = client.list_tasks(status=args.status, limit=args.limit)
    if args.json:
        print_json(found, out)
        return 0
    if not found:
        out.write("no tasks\n")
        return 0
    rows = [
        [
            task.id,
            task.status.value,
            str(task.steps),
            when(task.updated),
            task.pending_approval_id or "-",
            task.title,
        ]
        for task in found
    ]
    table(["TASK", "STATUS", "STEPS", "UPDATED", "WAITS ON", "TITLE"], rows, out)
    return 0


def events(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    """Prints a task's log; with --follow, keeps printing new events (Ctrl-C stops)."""
    stream = (
        client.stream_events(args.task, after_seq=args.after, follow=True, timeout=None)
        if args.follow
        else iter(client.list_events(args.task))
    )
    for event in stream:
        if event.seq and event.seq <= args.after:
            continue
        if event.type == "model_token" and not args.tokens:
            continue
        if args.json:
            print_json(event, out)
        else:
            out.write(event_line(event) + "\n")
        out.flush()
    return 0


def cancel(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    task = client.cancel_task(args.task, args.reason)
    out.write(f"{task.id}: {task.status.value}\n")
    return 0


def replay(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    """Exit code 0 when the replay reproduces the recorded actions, 1 when it does not."""
    result = client.replay(args.task)
    if args.json:
        print_json(result, out)
    else:
        out.writelines(
            f"{number:>3}. {directive}\n" for number, directive in enumerate(result.directives, start=1)
        )
        verdict = (
            "matches the recorded run"
            if result.matches
            else f"DIFFERS from the recorded run: {result.mismatch}"
        )
        out.write(f"replay of {args.task}: {len(result.directives)} actions; {verdict}\n")
    return 0 if result.matches else 1


def approvals(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    found = client.list_approvals(state=None if args.all else "pending", task_id=args.task or "")
    if args.json:
        print_json(found, out)
        return 0
    if not found:
        out.write("no pending approvals\n" if not args.all else "no approvals\n")
        return 0
    rows = [
        [item.id, item.state, item.task_id, item.tool, str(item.arguments), when(item.created)]
        for item in found
    ]
    table(["APPROVAL", "STATE", "TASK", "TOOL", "ARGUMENTS", "CREATED"], rows, out)
    return 0


def approve(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    item = client.approve(args.approval, scope=args.scope, ttl_seconds=args.ttl, reason=args.reason)
    covers = f"; covers {item.pattern}" if item.scope == "task_pattern" else ""
    out.write(
        f"{item.id}: {item.state} by {item.decided_by} ({item.tool} for task {item.task_id}{covers});"
        " the task goes on by itself\n"
    )
    return 0


def deny(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    item = client.deny(args.approval, reason=args.reason)
    out.write(f"{item.id}: {item.state} ({item.tool} for task {item.task_id})\n")
    return 0


def skills_list(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    listing = client.list_skills()
    if args.json:
        print_json(listing, out)
        return 0
    rows = [
        [skill.name, ",".join(skill.allowed_tools) or "(any)", skill.description] for skill in listing.skills
    ]
    table(["SKILL", "TOOLS", "DESCRIPTION"], rows, out, max_width=70)
    out.writelines(f"invalid, not loaded: {problem}\n" for problem in listing.invalid)
    return 0


def skills_show(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    skill = client.get_skill(args.name)
    if args.json:
        print_json(skill, out)
        return 0
    out.write(
        f"{skill.name}: {skill.description}\nallowed tools: {', '.join(skill.allowed_tools) or '(any)'}\n"
    )
    if skill.files:
        out.write(f"files: {', '.join(skill.files)}\n")
    out.write("\n" + skill.body.rstrip() + "\n")
    return 0


def skills_validate(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    """Validates a SKILL.md (or a skill folder) on this machine, or a skill on the server by name.
    Exit code 0 when valid, 1 with every problem listed when not."""
    if args.name:
        result = client.validate_skill(name=args.target, strict=args.strict)
        label = args.target
    else:
        path = Path(args.target)
        skill_file = path / "SKILL.md" if path.is_dir() else path
        text = skill_file.read_text(encoding="utf-8")
        result = client.validate_skill(
            skill_md=text, folder_name=skill_file.resolve().parent.name, strict=args.strict
        )
        label = str(skill_file)
    if args.json:
        print_json(result, out)
        return 0 if result.valid else 1
    out.writelines(f"{label}: warning: {warning}\n" for warning in result.warnings)
    if result.valid:
        out.write(f"{label}: valid\n")
    else:
        out.write(f"{label}: {len(result.problems)} problem(s)\n")
        out.writelines(f"  - {problem}\n" for problem in result.problems)
    return 0 if result.valid else 1


def skills_proposals(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    found = client.list_proposals(state=args.state)
    if args.json:
        print_json(found, out)
        return 0
    if not found:
        out.write("no proposals\n")
        return 0
    rows = [[item.id, item.name, item.state, when(item.created), item.rationale] for item in found]
    table(["PROPOSAL", "NAME", "STATE", "CREATED", "RATIONALE"], rows, out)
    return 0


def skills_promote(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    item = client.promote_proposal(args.proposal, decided_by=args.by)
    out.write(f"{item.id}: {item.state}; skill {item.name!r} is now available\n")
    return 0


def skills_reject(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    item = client.reject_proposal(args.proposal, decided_by=args.by, reason=args.reason)
    out.write(f"{item.id}: {item.state}\n")
    return 0


def memory_search(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    result = client.search(args.query, top_k=args.top_k, kind=args.kind, tags=args.tag or ())
    if args.json:
        print_json(result, out)
        return 0
    if not result.results:
        out.write("nothing found\n")
    out.writelines(
        f"{hit.score:6.3f}  {hit.memory.id}  [{hit.memory.kind}] {hit.memory.text}\n"
        for hit in result.results
    )
    return 0


def memory_remember(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    scope = "project" if args.project else "task" if args.task else "long_term"
    memory = client.remember(
        args.text, kind=args.kind, tags=args.tag or (), task_id=args.task, project=args.project, scope=scope
    )
    if args.json:
        print_json(memory, out)
    else:
        out.write(f"remembered {memory.id} ({_where(memory)})\n")
    return 0


def _where(memory: Memory) -> str:
    if memory.scope == "task":
        return f"task {memory.task_id}"
    if memory.scope == "project":
        return f"project {memory.project}"
    return "long-term"


def _conditions(args: argparse.Namespace) -> dict[str, Any]:
    return {"scope": args.scope, "task_id": args.task, "project": args.project, "kind": args.kind,
            "tags": args.tag or (), "text": args.text}


def memory_list(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    page = client.list_memories(**_conditions(args), page_size=args.page_size, page_token=args.page_token)
    if args.json:
        print_json(page, out)
        return 0
    if not page.memories:
        out.write("no memories\n")
    out.writelines(
        f"{memory.id}  {_where(memory):<24} [{memory.kind}] {memory.text}\n" for memory in page.memories
    )
    shown = len(page.memories)
    out.write(f"{shown} of {page.total}" + (f"; next page: --page-token {page.next_page_token}\n" if page.next_page_token else "\n"))
    return 0


def memory_promote(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    memory = client.promote_memory(args.memory, project=args.project)
    out.write(f"{memory.id}: kept {_where(memory)}\n")
    return 0


def memory_forget(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    conditions = {key: value for key, value in _conditions(args).items() if value}
    if args.memory and (conditions or args.confirm):
        raise ValueError("give a memory id, or conditions, not both")
    if args.memory:
        deleted = client.forget(args.memory)
    elif args.confirm:
        if set(conditions) - {"scope", "task_id", "project"} or not args.scope:
            raise ValueError("--confirm forgets a whole scope: give --scope (with --task or --project) and nothing else")
        deleted = client.forget_scope(args.scope, confirm=args.confirm, task_id=args.task, project=args.project)
    elif conditions:
        deleted = client.forget_matching(**conditions)
    else:
        raise ValueError("say what to forget: a memory id, conditions (--scope, --task, --kind, --tag, --text), "
                         "or a whole --scope with --confirm")
    out.write(f"forgot {deleted} memory\n" if deleted == 1 else f"forgot {deleted} memories\n")
    return 0 if deleted else 1


def health(args: argparse.Namespace, client: Client, out: TextIO) -> int:
    statuses = client.health()
    out.writelines(
        f"{service:<8} {client.connection.address(service):<22} {status}\n"
        for service, status in statuses.items()
    )
    return 0 if all(status == "serving" for status in statuses.values()) else 1
