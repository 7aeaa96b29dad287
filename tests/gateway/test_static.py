"""The WebChat files: served with a strict Content-Security-Policy, and the scripts never turn
text into HTML (every piece of model or tool output goes through textContent or the renderer
that builds nodes)."""

from __future__ import annotations

import re

import httpx
import pytest

from services.gateway.config import Settings
from services.gateway.routes.pages import STATIC
from tests.gateway.conftest import gateway_in_process

SCRIPTS = sorted(STATIC.glob("*.js"))
HTML_SINKS = re.compile(
    r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setHTML|DOMParser"
)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_never_write_html(script: object) -> None:
    assert not HTML_SINKS.findall(script.read_text())  # type: ignore[attr-defined]


def test_the_page_has_no_inline_script_or_style() -> None:
    page = (STATIC / "index.html").read_text()
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert "<style" not in page
    assert re.findall(r"\son[a-z]+\s*=", page) == [], "no inline event handlers"


async def test_the_page_and_its_files_are_served_with_a_strict_policy(api: httpx.AsyncClient) -> None:
    page = await api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "object-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for script in SCRIPTS:
        served = await api.get(f"/static/{script.name}")
        assert served.status_code == 200
        assert "javascript" in served.headers["content-type"]
    missing = await api.get("/static/nope.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"



async def test_the_gateway_serves_its_metrics_and_links_every_services() -> None:
    links = {"runtime": "http://127.0.0.1:9451/metrics"}
    async with gateway_in_process(Settings(metrics_urls=links)) as client:
        await client.get("/openapi.json")
        metrics = await client.get("/metrics/")
        health = (await client.get("/healthz")).json()
    assert metrics.status_code == 200
    assert 'route="/openapi.json"' in metrics.text
    assert health["metrics"] == {"gateway": "/metrics", **links}
