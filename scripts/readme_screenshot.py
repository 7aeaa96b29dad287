"""Takes the README's screenshot, docs/images/webchat.png, from the real thing.

Runs the real stack (every service, the gateway, llama-server with the default model from
config/models.yaml) on free ports over a small workspace, drives WebChat in headless Debian
Chromium, asks for a file to be written and photographs the approval card the model's real
write_file call raises (docs/images/webchat-approval.png). Then it approves, waits for the tool's
result and the model's reply, and takes docs/images/webchat.png.

It never falls back to a scripted model: when no request makes the model call write_file it
exits non-zero and says so. At temperature 0 the model answers a request the same way each time,
so the picture is repeatable on one machine.

    .venv/bin/python scripts/readme_screenshot.py
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

from playwright.async_api import Browser, Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deploy.stack import LocalStack, StackPorts
from services.common.config import repo_root
from tests.gateway.conftest import CHROMIUM_FLAGS, chromium_path

IMAGES = repo_root() / "docs" / "images"
# Tried in order; the first the model answers with a write_file call is photographed.
REQUESTS = (

    "Save the text 'call the bank' to a file named reminder.txt.",
    "Write 'call the bank' to reminder.txt.",
    "Create a file reminder.txt containing: call the bank",
)
REST = ("waiting_approval", "completed", "failed", "cancelled")
# A 135M model on a few cores: a turn takes seconds, a slow machine gets minutes.
TURN_TIMEOUT_MS = 240_000


class NoToolCall(RuntimeError):
    """The model answered a request without asking to run write_file."""


def lay_workspace(workspace: Path) -> None:
    (workspace / "notes").mkdir(parents=True, exist_ok=True)
    (workspace / "notes" / "groceries.md").write_text("# Groceries\n\n- bread\n- eggs\n")
    (workspace / "todo.txt").write_text("water the plants\n")


async def settle(page: Page, statuses: tuple[str, ...] = REST) -> str:
    """Waits until the task comes to rest (one of `statuses`) and returns its status."""
    selector = ", ".join(f'#status[data-status="{status}"]' for status in statuses)
    await page.locator(selector).wait_for(timeout=TURN_TIMEOUT_MS)
    return await page.locator("#status").get_attribute("data-status") or ""


async def shoot(browser: Browser, url: str, request: str, out: Path) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 640}, color_scheme="light")
    page = await context.new_page()
    await page.goto(url)
    await page.fill("#input", request)
    await page.press("#input", "Enter")
    status = await settle(page)
    card = page.locator("#log .approval-card").last
    if status != "waiting_approval" or "write_file" not in await card.locator(".approval-title").inner_text():
        reply = await page.locator("#log").inner_text()
        raise NoToolCall(f"status {status!r}, no write_file approval; the page said:\n{reply[-600:]}")
    await page.screenshot(path=str(out / "webchat-approval.png"))
    await card.locator("button.approve").click()
    # The page still says "waiting" until the runtime picks the decision up.
    if await settle(page, REST[1:]) != "completed":
        raise NoToolCall(f"the task did not complete after the approval: {await page.locator('#log').inner_text()}")
    await page.locator("#task-list li").first.wait_for()
    await page.screenshot(path=str(out / "webchat.png"))
    await context.close()


async def attempt(browser: Browser, request: str) -> None:
    """One request on a fresh stack (nothing from an earlier attempt in its history or memory);
    the pictures replace the README's only once both are taken."""
    with tempfile.TemporaryDirectory(prefix="ducklm-readme-shot-") as data:
        stack = LocalStack(data_dir=Path(data), ports=StackPorts.free(), log_dir=Path(data) / "logs")
        await stack.start(timeout=300.0)
        try:
            lay_workspace(stack.data_dir / "workspace")
            try:
                await shoot(browser, stack.gateway_url, request, Path(data))
            except NoToolCall as reason:
                runtime_log = (Path(data) / "logs" / "runtime.log").read_text(errors="replace")
                raise NoToolCall(f"{reason}\nruntime log, last lines:\n{runtime_log[-1500:]}") from None
            written = sorted(p.relative_to(stack.data_dir / "workspace") for p in (stack.data_dir / "workspace").rglob("*"))
            print(f"workspace after the approval: {', '.join(map(str, written))}")
        finally:
            await stack.stop()
        for name in ("webchat.png", "webchat-approval.png"):
            shutil.move(Path(data) / name, IMAGES / name)


async def main() -> int:
    IMAGES.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=await asyncio.to_thread(chromium_path), args=CHROMIUM_FLAGS
        )
        try:
            for request in REQUESTS:
                print(f"request: {request}", flush=True)
                try:
                    await attempt(browser, request)
                except NoToolCall as reason:
                    print(f"  not used: {reason}", flush=True)
                    continue
                print(f"used request: {request}")
                print("wrote docs/images/webchat.png and docs/images/webchat-approval.png")
                return 0
        finally:
            await browser.close()
    print("FAILED: the model made no write_file call for any request; the README picture is unchanged", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
