"""What DuckLM adds to an MCP tool call on stdio, over the server's own time.

    .venv/bin/python scripts/bench/bench_mcp.py [--calls 200]

Starts the SDK-written probe server (tests/tools/mcp_probe_server.py) twice: once behind a real
tools service on port 0 (in its bubblewrap sandbox; each call through ExecuteTool over gRPC,
under a task grant, so the approval check is included), and once under the SDK's own client
directly (the server's own time, transport included). The two are timed on the same `echo`,
interleaved so that the machine's load falls on both alike.
Target: an MCP tool call adds <= 5 ms p50.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import yaml
from ducklm.approvals.v1 import approvals_pb2, approvals_pb2_grpc
from ducklm.tools.v1 import tools_pb2, tools_pb2_grpc
from mcp import Client, StdioServerParameters

from services.common.auth import approver_metadata
from services.common.config import repo_root
from services.common.protos import to_struct
from services.tools.config import Settings
from services.tools.server import create_server

TARGET_MS = 5.0
PROBE = repo_root() / "tests" / "tools" / "mcp_probe_server.py"
TOKEN = "bench-approver-token-0123456789"
ARGUMENTS = {"text": "quack"}


def _config(path: Path, state: Path) -> Path:
    server = {
        "command": sys.executable,
        "args": [str(PROBE), str(state)],
        "paths": sorted({sys.prefix, sys.base_prefix, str(PROBE.parent)}),
        "writable_paths": [str(state)],
    }
    path.write_text(yaml.safe_dump({"servers": {"probe": server}}))
    return path


async def _task_grant(channel: grpc.aio.Channel) -> None:
    approvals = approvals_pb2_grpc.ApprovalsServiceStub(channel)
    approval = await approvals.RequestApproval(
        approvals_pb2.RequestApprovalRequest(task_id="bench", tool_name="probe.echo", arguments=to_struct(ARGUMENTS))
    )
    await approvals.Approve(
        approvals_pb2.ApproveRequest(approval_id=approval.id, scope=approvals_pb2.APPROVAL_SCOPE_TASK),
        metadata=approver_metadata(TOKEN, "bench"),
    )


async def main(calls: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder)
        state = data / "state"
        state.mkdir()
        server = await create_server(
            Settings(
                address="127.0.0.1:0",
                workspace_dir=data / "workspace",
                database_path=data / "tools.db",
                approver_token=TOKEN,
                mcp_config_file=_config(data / "mcp.yaml", state),
            )
        )
        channel = grpc.aio.insecure_channel(server.address)
        stub = tools_pb2_grpc.ToolsServiceStub(channel)
        request = tools_pb2.ExecuteToolRequest(tool_name="probe.echo", arguments=to_struct(ARGUMENTS), task_id="bench")
        direct_params = StdioServerParameters(command=sys.executable, args=[str(PROBE), str(data / "direct")])
        (data / "direct").mkdir()
        ducklm: list[float] = []
        direct: list[float] = []
        try:
            await _task_grant(channel)
            async with Client(direct_params, cache=None) as client:
                await client.list_tools()
                for _ in range(10):  # warm up both paths
                    await stub.ExecuteTool(request, timeout=30)
                    await client.session.call_tool("echo", ARGUMENTS)
                for _ in range(calls):
                    started = time.perf_counter()
                    await stub.ExecuteTool(request, timeout=30)
                    ducklm.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    await client.session.call_tool("echo", ARGUMENTS)
                    direct.append((time.perf_counter() - started) * 1000)
        finally:
            await channel.close()
            await server.stop(0)
    through, alone = statistics.median(ducklm), statistics.median(direct)
    overhead = through - alone
    print(f"MCP echo through DuckLM (gRPC, approval, sandbox) p50 {through:6.2f} ms")
    print(f"MCP echo by the SDK client alone (server's time)   p50 {alone:6.2f} ms")
    verdict = "reached" if overhead <= TARGET_MS else "NOT reached"
    print(f"MCP call overhead on stdio: p50 {overhead:6.2f} ms   target <= {TARGET_MS:g} ms ({verdict})")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    raise SystemExit(asyncio.run(main(parser.parse_args().calls)))
