"""What the bubblewrap sandbox adds to a run_command, end to end over gRPC.

    .venv/bin/python scripts/bench/sandbox_bench.py [--calls 200]

Starts two real tools services on port 0, one with the sandbox (the default) and one with it
turned off, and times the same read-only `cat` on a small workspace file through ExecuteTool,
interleaving the two so that the machine's load falls on both alike. Also times an approved
`touch` (read-write workspace, protected paths walked and mounted) and bwrap itself.
Target: the sandboxed run adds <= 10 ms p50.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.tools.v1 import tools_pb2, tools_pb2_grpc

from services.common.auth import approver_metadata
from services.common.protos import to_struct
from services.tools.config import Settings
from services.tools.server import create_server

TARGET_MS = 10.0
# The approver credential of the bench's own tools services (Approve needs one).
APPROVER_TOKEN = "sandbox-bench-approver-0123456789"


async def _call(stub: tools_pb2_grpc.ToolsServiceAsyncStub, argv: list[str], approval_id: str = "") -> float:
    request = tools_pb2.ExecuteToolRequest(
        tool_name="run_command", arguments=to_struct({"argv": argv}), task_id="bench", approval_id=approval_id
    )
    started = time.perf_counter()
    response = await stub.ExecuteTool(request, timeout=30)
    elapsed = (time.perf_counter() - started) * 1000
    exit_code = response.result.fields["exit_code"].number_value
    if exit_code != 0:
        raise SystemExit(f"{argv} failed with {exit_code}: {response.result.fields['stderr'].string_value}")
    return elapsed


async def _task_grant(channel: grpc.aio.Channel, argv: list[str]) -> str:
    approvals = approvals_pb2_grpc.ApprovalsServiceStub(channel)
    approval = await approvals.RequestApproval(
        approvals_pb2.RequestApprovalRequest(
            task_id="bench", tool_name="run_command", arguments=to_struct({"argv": argv})
        )
    )
    await approvals.Approve(
        approvals_pb2.ApproveRequest(
            approval_id=approval.id, scope=approvals_pb2.APPROVAL_SCOPE_TASK, decided_by="bench"
        ),
        metadata=approver_metadata(APPROVER_TOKEN, "bench"),
    )
    return str(approval.id)


def _bwrap_alone(calls: int) -> tuple[float, float]:
    """p50 of exec'ing `true` directly and inside a minimal bwrap (no service around it)."""
    base = [
        "bwrap",
        "--unshare-all",
        "--ro-bind",
        "/usr",
        "/usr",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/lib",
        "/lib",
        "--",
    ]
    plain, boxed = [], []
    for _ in range(calls):
        started = time.perf_counter()
        subprocess.run(["/usr/bin/true"], check=True)
        plain.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        subprocess.run([*base, "/usr/bin/true"], check=True)
        boxed.append((time.perf_counter() - started) * 1000)
    return statistics.median(plain), statistics.median(boxed)


async def main(calls: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        servers = {}
        for name, sandbox in (("sandboxed", True), ("unsandboxed", False)):
            workspace = data / name / "workspace"
            workspace.mkdir(parents=True)
            (workspace / "note.txt").write_text("hello\n")
            (workspace / ".git").mkdir()
            servers[name] = await create_server(
                Settings(
                    address="127.0.0.1:0",
                    workspace_dir=workspace,
                    database_path=data / name / "tools.db",
                    sandbox=sandbox,
                    approver_token=APPROVER_TOKEN,
                )
            )
        channels = {name: grpc.aio.insecure_channel(server.address) for name, server in servers.items()}
        stubs = {name: tools_pb2_grpc.ToolsServiceStub(channel) for name, channel in channels.items()}
        grants = {name: await _task_grant(channel, ["touch", "x"]) for name, channel in channels.items()}
        samples: dict[str, list[float]] = {
            f"{kind} {name}": [] for kind in ("cat", "touch") for name in servers
        }
        try:
            for name in servers:  # warm up both paths
                await _call(stubs[name], ["cat", "note.txt"])
            for _ in range(calls):
                for name in servers:
                    samples[f"cat {name}"].append(await _call(stubs[name], ["cat", "note.txt"]))
                    samples[f"touch {name}"].append(await _call(stubs[name], ["touch", "x"], grants[name]))
        finally:
            for channel in channels.values():
                await channel.close()
            for server in servers.values():
                await server.stop(0)
    p50 = {key: statistics.median(values) for key, values in samples.items()}
    for key, value in p50.items():
        print(f"run_command {key:<20} p50 {value:6.2f} ms")
    plain, boxed = await asyncio.to_thread(_bwrap_alone, calls)
    print(f"exec true directly           p50 {plain:6.2f} ms")
    print(f"exec true in a bare bwrap    p50 {boxed:6.2f} ms")
    overhead = p50["cat sandboxed"] - p50["cat unsandboxed"]
    approved = p50["touch sandboxed"] - p50["touch unsandboxed"]
    verdict = "reached" if overhead <= TARGET_MS else "NOT reached"
    print(
        f"sandbox overhead, read-only run_command: p50 {overhead:6.2f} ms   target <= {TARGET_MS:g} ms ({verdict})"
    )
    print(f"sandbox overhead, approved run_command:  p50 {approved:6.2f} ms   (no target)")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    raise SystemExit(asyncio.run(main(parser.parse_args().calls)))
