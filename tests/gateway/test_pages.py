"""The interactive API page /docs (Swagger UI under the strict policy) and the weight of
WebChat's first load (HTML, scripts and style sheets together at most 300 KB)."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, expect

from services.gateway.routes.pages import STATIC
from tests.gateway.conftest import GatewayStack

FIRST_LOAD_LIMIT = 300 * 1024
_ASSETS = re.compile(r'<(?:script|link)[^>]+(?:src|href)="/static/([^"]+\.(?:js|css))"')
_IMPORTS = re.compile(r'^import[^"\n]*"(\./[^"]+)";', re.MULTILINE)


def first_load_files() -> set[Path]:
    """index.html and every script and style sheet it loads, ES imports followed."""
    page = STATIC / "index.html"
    files = {page}
    pending = [STATIC / name for name in _ASSETS.findall(page.read_text())]
    while pending:
        path = pending.pop().resolve()
        if path in files:
            continue
        files.add(path)
        if path.suffix == ".js":
            pending += [path.parent / name for name in _IMPORTS.findall(path.read_text())]
    return files


def test_the_first_load_is_at_most_300_kb() -> None:
    files = first_load_files()
    names = {path.name for path in files}
    assert {"webchat.js", "markdown.js", "marked.esm.js", "purify.min.js", "core.min.js", "webchat.css"} <= names
    total = sum(path.stat().st_size for path in files)
    print(f"WebChat first load: {total / 1024:.1f} KB in {len(files)} files (target <= 300 KB)")
    assert total <= FIRST_LOAD_LIMIT, total


async def test_the_first_load_in_the_browser_matches(page: Page, gateway_stack: GatewayStack) -> None:
    await page.goto(gateway_stack.url)
    await expect(page.locator("#welcome")).to_be_visible()
    loaded = await page.evaluate(
        """performance.getEntriesByType("resource").map((entry) => new URL(entry.name).pathname)
             .filter((path) => /\\.(js|css)$/.test(path))"""
    )
    expected = {f"/static/{path.relative_to(STATIC)}" for path in first_load_files() if path.suffix != ".html"}
    # Everything the page fetched is counted (the style sheet of the other theme only loads when used).
    assert set(loaded) <= expected and "/static/webchat.js" in loaded, set(loaded) ^ expected


async def test_the_api_page_lists_and_runs_the_operations(page: Page, gateway_stack: GatewayStack) -> None:
    await page.goto(f"{gateway_stack.url}/docs")
    await expect(page.locator(".swagger-ui .title")).to_contain_text("DuckLM gateway")
    operation = page.locator("#operations-openai-get_v1_models")
    await expect(operation).to_be_visible()
    await expect(page.locator(".opblock-summary-path", has_text="/v1/chat/completions")).to_have_count(1)
    await operation.locator(".opblock-summary").click()
    await operation.locator("button.try-out__btn").click()
    await operation.locator("button.execute").click()
    live = operation.locator(".live-responses-table tbody td.response-col_status")
    await expect(live.first).to_have_text("200")
    await expect(operation.locator(".live-responses-table tbody td.response-col_description").first).to_contain_text('"ducklm"')
    assert page.errors == []  # type: ignore[attr-defined]
