"""Takes WebChat's screenshots in docs/images/: light, dark and phone layouts.

Runs the real stack (every service, the gateway, headless Debian Chromium) with the chat model
replaced by the scripted one from the tests, so the pictures are the same on every machine; each
picture says so in its corner ("replies from a scripted model").

    .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.common.config import repo_root
from tests.gateway.conftest import CHROMIUM_FLAGS, chromium_path, scripted_stack
from tests.scripted_model import ScriptedModel

IMAGES = repo_root() / "docs" / "images"
LABEL = """
() => {
  const label = document.createElement("div");
  label.textContent = "replies from a scripted model";
  Object.assign(label.style, {position: "fixed", right: "8px", bottom: "4px", font: "11px sans-serif",
    opacity: "0.6", color: "var(--muted)", zIndex: "100", pointerEvents: "none"});
  document.body.append(label);
}
"""
ANSWER = """Here is how the three ducks compare:

| Duck | Habitat | Call |
|------|---------|------|
| Mallard | ponds, rivers | loud *quack* |
| Teal | marshes | soft peep |
| Eider | sea coasts | cooing *ah-ooo* |

And a function that counts them:

```python
def count_ducks(pond: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for duck in pond:
        counts[duck] = counts.get(duck, 0) + 1
    return counts
```
"""


async def fill_stack(api: httpx.AsyncClient, model: ScriptedModel) -> None:
    model.script(
        [
            {"action": "respond", "message": "Hello! I can chat, use tools in your workspace and remember things."},
            {"action": "respond", "message": "HTTP is how browsers and servers talk: a request, then a response."},
        ]
    )
    await api.post("/v1/chat", json={"message": "Hello, who are you?"})
    await api.post("/v1/chat", json={"message": "Explain what HTTP is in two sentences"})


async def shoot(page: Page, url: str, model: ScriptedModel, path: Path) -> None:
    model.script([{"action": "respond", "message": ANSWER}])
    await page.goto(url)
    await page.fill("#input", "Compare three kinds of duck in a table, and count them in Python")
    await page.press("#input", "Enter")
    await page.locator(".reply-actions .stats").last.wait_for()
    if await page.locator("#sidebar").is_visible():
        await page.locator("#task-list li.open").wait_for()
    await page.evaluate(LABEL)
    await page.screenshot(path=str(path))
    print(f"wrote {path.relative_to(repo_root())}")


async def main() -> None:
    model = ScriptedModel()
    await model.start()
    try:
        with tempfile.TemporaryDirectory(prefix="ducklm-shots-") as data:
            async with scripted_stack(Path(data), model) as stack:
                async with httpx.AsyncClient(base_url=stack.url, timeout=60.0) as api:
                    await fill_stack(api, model)
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=await asyncio.to_thread(chromium_path), args=CHROMIUM_FLAGS
                    )
                    layouts: list[tuple[str, dict[str, Any]]] = [
                        ("webchat-light.png", {"viewport": {"width": 1280, "height": 800}, "color_scheme": "light"}),
                        ("webchat-dark.png", {"viewport": {"width": 1280, "height": 800}, "color_scheme": "dark"}),
                        (
                            "webchat-phone.png",
                            {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "color_scheme": "light"},
                        ),
                    ]
                    IMAGES.mkdir(parents=True, exist_ok=True)
                    for name, options in layouts:
                        context = await browser.new_context(**options)
                        await shoot(await context.new_page(), stack.url, model, IMAGES / name)
                        await context.close()
                    await browser.close()
    finally:
        await model.stop()


if __name__ == "__main__":
    asyncio.run(main())
