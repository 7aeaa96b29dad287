"""config/mcp.yaml, MCP results and restart backoff, piece by piece: what a bad file says, how
every content type comes back, and how long a crashing server waits before its next start."""

from __future__ import annotations

from pathlib import Path

import mcp_types as types
import pytest

from services.common.config import ConfigError, repo_root
from services.tools.mcp_config import load_mcp_config, parse_mcp_config
from services.tools.mcp_connection import Backoff
from services.tools.mcp_results import tool_result


def test_shipped_and_absent_files_configure_no_servers(tmp_path: Path) -> None:
    assert load_mcp_config(repo_root() / "config" / "mcp.yaml").servers == {}
    assert load_mcp_config(tmp_path / "absent.yaml").servers == {}
    assert parse_mcp_config("").servers == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("servers: {a: {command: x, url: 'http://h/mcp'}}", "either `command`"),
        ("servers: {a: {}}", "either `command`"),
        ("servers: {a.b: {command: x}}", "server name"),
        ("servers: {a: {command: x, paths: [relative]}}", "absolute"),
        ("servers: {a: {url: 'ftp://h'}}", "http://"),
        ("servers: {a: {url: 'http://h/mcp', args: [x]}}", "stdio servers only"),
        ("servers: {a: {command: x, colour: blue}}", "colour"),
        ("servers: [", "not valid YAML"),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match="mcp.yaml") as refused:
        parse_mcp_config(text)
    assert says in str(refused.value)


def test_identity_holds_the_command_line_or_url_but_no_header() -> None:
    config = parse_mcp_config(
        "servers:\n"
        "  local: {command: srv, args: [--x], env: {KEY: '${SECRET}'}}\n"
        "  remote: {url: 'https://h/mcp', headers: {Authorization: 'Bearer abc'}}\n"
    )
    local = config.servers["local"].identity()
    assert (local["command"], local["args"], local["env"]) == ("srv", ["--x"], {"KEY": "${SECRET}"})
    assert config.servers["remote"].identity() == {"transport": "http", "url": "https://h/mcp"}


def _result(*blocks: types.ContentBlock, structured: dict[str, object] | None = None) -> types.CallToolResult:
    return types.CallToolResult(content=list(blocks), structured_content=structured)


def test_every_content_type_is_kept_or_summarised() -> None:
    result = _result(
        types.TextContent(type="text", text="hello"),
        types.ImageContent(type="image", data="QUJD", mime_type="image/png"),
        types.AudioContent(type="audio", data="QUJD", mime_type="audio/wav"),
        types.ResourceLink(type="resource_link", uri="file:///a.txt", name="a"),
        types.EmbeddedResource(
            type="resource", resource=types.TextResourceContents(uri="file:///b.txt", text="inside b")
        ),
        types.EmbeddedResource(
            type="resource", resource=types.BlobResourceContents(uri="file:///c.bin", blob="QUJD")
        ),
    )
    out = tool_result("s", "t", result, 10_000)
    assert out["text"] == "hello\n[resource file:///b.txt]\ninside b"
    assert out["other_content"] == [
        "image (image/png, 3 bytes) not shown",
        "audio (audio/wav, 3 bytes) not shown",
        "link to resource file:///a.txt (a)",
        "binary resource file:///c.bin (unknown type) not shown",
    ]
    assert out["truncated"] is False and "note" not in out


def test_structured_content_is_kept_when_it_fits_and_noted_when_not() -> None:
    fits = tool_result("s", "t", _result(structured={"n": 1}), 100)
    assert fits["structured_content"] == {"n": 1} and not fits["truncated"]
    big = tool_result("s", "t", _result(structured={"n": "y" * 500}), 100)
    assert "structured_content" not in big and big["truncated"]
    assert "left out" in big["note"]


def test_error_results_say_so() -> None:
    out = tool_result("s", "t", types.CallToolResult(content=[types.TextContent(type="text", text="no")], is_error=True), 100)
    assert out["is_error"] is True and out["text"] == "no"


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=0.5, longest=4.0)
    assert [backoff.delay(attempt) for attempt in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
