"""Cross-site and rebinding attacks from a real browser (headless Chromium) on the real gateway:
a page on another origin tries every request a page can send without the gateway's consent, and
a page whose name is rebound to 127.0.0.1 tries the gateway as its own origin. A pending
approval stays pending through all of it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from services.common.testing import free_port
from tests.gateway.conftest import CHROMIUM_FLAGS, GatewayStack, chromium_path

ATTACK_PAGE = b"""<!doctype html><html><body>
<form id="plain" method="POST" enctype="text/plain" target="sink"><input name='{"scope":"task","x":"' value='"}'></form>
<form id="urlencoded" method="POST" target="sink"><input name="scope" value="task"></form>
<iframe name="sink"></iframe>
</body></html>"""

# Every way this page tries to approve, without the gateway's consent (CORS is never granted).
ATTACK = """
async ([url]) => {
  const tried = [];
  const attempt = async (name, init) => {
    try { await fetch(url, init); tried.push(name + ": sent"); } catch (err) { tried.push(name + ": " + err); }
  };
  await attempt("no-cors text/plain", { method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: "" });
  await attempt("no-cors form", { method: "POST", mode: "no-cors", body: new URLSearchParams({ scope: "task" }) });
  await attempt("no-cors blob", { method: "POST", mode: "no-cors", body: new Blob(['{"scope":"task"}']) });
  await attempt("cors json", { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"scope":"task"}' });
  await attempt("cors credentials", { method: "POST", credentials: "include", headers: { "Content-Type": "application/json" }, body: "{}" });
  for (const id of ["plain", "urlencoded"]) {
    const form = document.getElementById(id);
    form.action = url;
    const loaded = new Promise((resolve) => document.querySelector("iframe").addEventListener("load", resolve, { once: true }));
    form.submit();
    await loaded;
    tried.push(id + " form: submitted");
  }
  return tried;
}
"""


class _AttackerSite(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(ATTACK_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def attacker_site() -> Iterator[str]:
    """Another origin on this machine (same site as the gateway, not the same origin)."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _AttackerSite)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def _pending_approval(api: httpx.AsyncClient, stack: GatewayStack, path: str) -> str:
    stack.model.script(
        [
            {"action": "call_tool", "tool": "write_file", "arguments": {"path": path, "content": "planted"}},
            {"action": "respond", "message": "written"},
        ]
    )
    body = (await api.post("/v1/chat", json={"message": f"write {path}"})).json()
    assert body["status"] == "waiting_approval", body
    return str(body["task"]["pending_approval_id"])


async def _assert_pending(api: httpx.AsyncClient, stack: GatewayStack, approval_id: str, path: str) -> None:
    approval = (await api.get(f"/v1/approvals/{approval_id}")).json()
    assert approval["state"] == "pending", approval
    assert not (stack.workspace / path).exists()


async def test_a_page_on_another_origin_cannot_approve(
    api: httpx.AsyncClient, gateway_stack: GatewayStack, page: Any, attacker_site: str
) -> None:
    approval_id = await _pending_approval(api, gateway_stack, "browser-attack.txt")
    await page.goto(attacker_site)
    for target in (gateway_stack.url, gateway_stack.url.replace("127.0.0.1", "localhost")):
        tried = await page.evaluate(ATTACK, [f"{target}/v1/approvals/{approval_id}/approve"])
        assert len(tried) == 7, tried
    await _assert_pending(api, gateway_stack, approval_id, "browser-attack.txt")
    await api.post(f"/v1/approvals/{approval_id}/deny", json={"reason": "test over"})


async def test_a_rebound_name_cannot_use_the_gateway_as_its_own_origin(
    api: httpx.AsyncClient, gateway_stack: GatewayStack
) -> None:
    """DNS rebinding: Chromium resolves rebind.example to 127.0.0.1, so the page and the gateway
    share an origin in the browser's eyes; the gateway still refuses the foreign Host."""
    from playwright.async_api import async_playwright

    approval_id = await _pending_approval(api, gateway_stack, "rebound.txt")
    rebound = f"http://rebind.example:{gateway_stack.stack.ports.gateway}"
    executable = await asyncio.to_thread(chromium_path)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[*CHROMIUM_FLAGS, "--host-resolver-rules=MAP rebind.example 127.0.0.1", "--no-proxy-server"],
        )
        try:
            tab = await browser.new_page()
            landing = await tab.goto(f"{rebound}/")
            assert landing is not None and landing.status == 400
            statuses = await tab.evaluate(
                """async ([id]) => {
                  const read = await fetch("/v1/approvals");
                  const approve = await fetch(`/v1/approvals/${id}/approve`, {
                    method: "POST", headers: { "Content-Type": "application/json" }, body: '{"scope":"task"}' });
                  return [read.status, approve.status, await approve.text()];
                }""",
                [approval_id],
            )
        finally:
            await browser.close()
    assert statuses[:2] == [400, 400], statuses
    assert "HOST_NOT_ALLOWED" in statuses[2]
    await _assert_pending(api, gateway_stack, approval_id, "rebound.txt")
    await api.post(f"/v1/approvals/{approval_id}/deny", json={"reason": "test over"})
