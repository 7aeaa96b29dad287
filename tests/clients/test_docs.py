"""The examples in docs/clients.md run as written (the quick start's CLI, Python, Node and grpcurl
blocks, and the longer Python and Node examples with an approval), against the scripted stack."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from services.common.config import repo_root
from tests.clients.conftest import DUCKLM, ScriptedStack, run_process

DOC = repo_root() / "docs" / "clients.md"
GREETING = {"action": "respond", "message": "Hello from the scripted model."}


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


def approval_script(path: str) -> list[dict[str, object]]:
    return [
        {"action": "call_tool", "tool": "write_file", "arguments": {"path": path, "content": "hi"}},
        {"action": "finish", "message": "Wrote it."},
    ]


async def test_quick_start_python(scripted: ScriptedStack) -> None:
    scripted.script([GREETING])
    finished = await run_process([sys.executable, "-c", blocks("python")[0]], env=scripted.client_env())
    assert finished.code == 0, finished.stderr
    assert finished.stdout == "Hello from the scripted model.\n"


async def test_quick_start_node(scripted: ScriptedStack, node_modules: None) -> None:
    scripted.script([GREETING])
    finished = await run_process(["node", "-e", blocks("js")[0]], env=scripted.client_env())
    assert finished.code == 0, finished.stderr
    assert finished.stdout == "Hello from the scripted model.\n"


async def test_quick_start_cli_and_grpcurl(scripted: ScriptedStack) -> None:
    cli, grpcurl = blocks("sh")[1].splitlines()[0], blocks("sh")[2].strip()
    scripted.script([GREETING])
    argv = shlex.split(cli)
    assert argv[0] == ".venv/bin/ducklm"
    finished = await run_process([str(DUCKLM), *argv[1:]], env=scripted.client_env())
    assert finished.code == 0, finished.stderr
    assert "duck> Hello from the scripted model." in finished.stdout

    scripted.script([GREETING])
    argv = shlex.split(grpcurl)
    argv[0] = str(Path(sys.executable).parent / "grpcurl")
    argv = [scripted.stack.address("runtime") if arg == "127.0.0.1:50051" else arg for arg in argv]
    finished = await run_process(argv, env={"PATH": "/usr/bin:/bin"})
    assert finished.code == 0, finished.stderr
    assert '"reply": "Hello from the scripted model."' in finished.stdout


async def test_the_python_example_approves_and_follows_the_rest(scripted: ScriptedStack) -> None:
    scripted.script(approval_script("notes.txt"))
    finished = await run_process([sys.executable, "-c", blocks("python")[1]], env=scripted.client_env())
    assert finished.code == 0, finished.stderr
    assert "approval_decided" in finished.stdout and "tool_result" in finished.stdout
    assert (scripted.workspace / "notes.txt").read_text() == "hi"


async def test_the_node_example_approves_and_follows_the_rest(scripted: ScriptedStack, node_modules: None) -> None:
    (scripted.workspace / "notes.txt").unlink(missing_ok=True)
    scripted.script(approval_script("notes.txt"))
    program = (
        "(async () => {\n"
        + blocks("js")[1]
        + "})().catch((error) => { console.error(error); process.exit(1); });"
    )
    finished = await run_process(["node", "-e", program], env=scripted.client_env())
    assert finished.code == 0, finished.stderr
    assert "approval_decided" in finished.stdout and "tool_result" in finished.stdout
    assert (scripted.workspace / "notes.txt").read_text() == "hi"
