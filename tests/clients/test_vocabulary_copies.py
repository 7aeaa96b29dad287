"""The limits and status words WebChat, the Node client and the Python client keep their own
copies of are the ones services/common/vocabulary.py defines: a change there that a copy does
not follow fails here, not in a browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ducklm_client import REST_STATUSES as PYTHON_CLIENT_REST_STATUSES

from services.common.vocabulary import MAX_MESSAGE_CHARS, REST_STATUSES

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "services" / "gateway" / "static"


def _js_set(path: Path, name: str) -> set[str]:
    """The words of `const NAME = new Set([...])` in a JavaScript file."""
    match = re.search(rf"const {name} = new Set\(\[([^\]]*)\]\)", path.read_text(encoding="utf-8"))
    assert match is not None, f"{path.name} no longer defines {name}"
    return set(json.loads("[" + match.group(1).replace("'", '"') + "]"))


def test_webchat_message_limit_is_the_gateways() -> None:
    match = re.search(r"export const MAX_MESSAGE_CHARS = (\d+);", (STATIC / "composer.js").read_text(encoding="utf-8"))
    assert match is not None, "composer.js no longer defines MAX_MESSAGE_CHARS"
    assert int(match.group(1)) == MAX_MESSAGE_CHARS


def test_webchat_resting_statuses_are_the_runtimes() -> None:
    assert _js_set(STATIC / "conversation.js", "RESTING") == REST_STATUSES


def test_node_client_rest_statuses_are_the_runtimes() -> None:
    assert _js_set(ROOT / "clients" / "node" / "src" / "index.js", "REST_STATUSES") == REST_STATUSES


def test_python_client_rest_statuses_are_the_runtimes() -> None:
    assert {str(status) for status in PYTHON_CLIENT_REST_STATUSES} == REST_STATUSES
