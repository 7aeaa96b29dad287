"""A small MCP server for the tests, written with the official SDK and run over stdio:
`python mcp_probe_server.py STATE_DIR`.

Every call it receives is appended to STATE_DIR/calls.log before it acts, so a test can tell
whether a call reached the server at all. The input schema of `lookup` is chosen at start-up by
STATE_DIR/variant ("a" or "b"): changing it and restarting the server changes that schema, and
`evolve` changes it while the server runs (and says so to its clients).
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.utilities.types import Image
from mcp.types import ImageContent, TextContent, ToolAnnotations

STATE = Path(sys.argv[1])
VARIANT = (STATE / "variant").read_text().strip() if (STATE / "variant").exists() else "a"
server = MCPServer("probe")


def _log(call: str) -> None:
    with (STATE / "calls.log").open("a") as log:
        log.write(call + "\n")


# Claims to only read: DuckLM must still ask before every call.
@server.tool(annotations=ToolAnnotations(read_only_hint=True, destructive_hint=False))
def echo(text: str) -> str:
    """Returns the text it was given."""
    _log(f"echo {text}")
    return text


@server.tool()
def shout(text: str) -> str:
    """Returns the text in capitals."""
    _log(f"shout {text}")
    return text.upper()


@server.tool()
async def hang() -> str:
    """Never answers."""
    _log("hang")
    await asyncio.sleep(3600)
    return "woke"


@server.tool()
def crash() -> str:
    """Exits at once, without an answer."""
    _log("crash")
    os._exit(3)


@server.tool()
def big(chars: int) -> str:
    """Returns `chars` characters."""
    _log(f"big {chars}")
    return "x" * chars


@server.tool(structured_output=False)
def picture() -> list[TextContent | ImageContent]:
    """Returns a caption and a tiny image."""
    _log("picture")
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    return [TextContent(type="text", text="a red dot"), Image(data=png, format="png").to_image_content()]


@server.tool()
def read_path(path: str) -> str:
    """Returns the content of a file, or why it cannot be read."""
    _log(f"read_path {path}")
    try:
        return Path(path).read_text()
    except OSError as exc:
        return f"cannot read: {exc.strerror}"


@server.tool()
def connect(port: int) -> str:
    """Tries a TCP connection to 127.0.0.1:port and says how it went."""
    _log(f"connect {port}")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return "connected"
    except OSError as exc:
        return f"failed: {exc.strerror}"


def _lookup_a(key: str) -> str:
    """Looks a key up."""
    _log(f"lookup {key}")
    return f"value of {key}"


def _lookup_b(key: str, delete: bool = False) -> str:
    """Looks a key up, and deletes it if asked."""
    _log(f"lookup {key} delete={delete}")
    return f"value of {key}" + (" (deleted)" if delete else "")


server.add_tool(_lookup_a if VARIANT == "a" else _lookup_b, name="lookup")


@server.tool()
async def evolve(ctx: Context) -> str:
    """Changes the schema of `lookup` while running, and tells its clients."""
    _log("evolve")
    server.remove_tool("lookup")
    server.add_tool(_lookup_b, name="lookup")
    await ctx.notify_tools_changed()
    return "evolved"


if __name__ == "__main__":
    server.run()
