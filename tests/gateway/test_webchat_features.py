"""WebChat's everyday features in headless Chromium: themes, the phone drawer, the welcome
screen, per-reply copy / regenerate and edit-and-resend, reply figures, Markdown tables and
highlighted code, chats renamed / deleted / searched, the input kept when a send fails, feedback
for an empty message, the Approvals tab agreeing with GET /v1/approvals, and `/skill` completion.
The model is the scripted one (tests/scripted_model.py)."""

from __future__ import annotations

import uuid

import httpx
from playwright.async_api import Page, expect

from tests.gateway.conftest import GatewayStack
from tests.gateway.streams import wait_for_status


def reply(text: str) -> dict[str, str]:
    return {"action": "respond", "message": text}


async def send(page: Page, text: str) -> None:
    await page.fill("#input", text)
    await page.press("#input", "Enter")


async def background(page: Page) -> str:
    return str(await page.evaluate("getComputedStyle(document.body).backgroundColor"))


async def test_the_theme_follows_the_system_and_the_toggle(page: Page, gateway_stack: GatewayStack) -> None:
    await page.emulate_media(color_scheme="dark")
    await page.goto(gateway_stack.url)
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dark = await background(page)
    await page.emulate_media(color_scheme="light")
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    light = await background(page)
    assert dark != light and dark == "rgb(23, 23, 26)", (dark, light)

    toggle = page.locator("#theme")
    await toggle.click()  # system -> light
    await expect(toggle).to_have_attribute("data-theme-choice", "light")
    await toggle.click()  # light -> dark, kept across a reload even with a light system
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    await page.reload()
    await expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert await page.evaluate("document.getElementById('code-dark').disabled") is False
    await toggle.click()  # dark -> system again
    await expect(page.locator("html")).to_have_attribute("data-theme", "light")
    assert page.errors == []  # type: ignore[attr-defined]


async def test_on_a_phone_the_sidebar_is_a_drawer(page: Page, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("Phone reply.")])
    await page.set_viewport_size({"width": 390, "height": 780})
    await page.goto(gateway_stack.url)
    sidebar = page.locator("#sidebar")
    assert not await sidebar.evaluate("(node) => node.getBoundingClientRect().right > 0")
    await send(page, "Hello from a phone")
    await expect(page.locator(".msg.assistant").last).to_have_text("Phone reply.")

    await page.click("#menu")
    await expect(page.locator("#scrim")).to_be_visible()
    await expect(sidebar).to_be_in_viewport()
    await expect(page.locator("#new-chat")).to_be_visible()
    await page.click("[data-panel=approvals]")
    await expect(page.locator("#panel-approvals")).to_be_visible()
    await page.click("[data-panel=chats]")
    await page.click("#new-chat")  # the drawer closes on its own
    await expect(page.locator("#scrim")).to_be_hidden()
    await expect(page.locator("#welcome")).to_be_visible()
    await page.click("#menu")
    await page.locator("#task-list .task-title", has_text="Hello from a phone").first.click()
    await expect(page.locator("#scrim")).to_be_hidden()
    await expect(page.locator(".msg.assistant").last).to_have_text("Phone reply.")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing is wider than the phone"
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_welcome_screen_sends_an_example(page: Page, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("Ducks glide / on the pond.")])
    await page.goto(gateway_stack.url)
    welcome = page.locator("#welcome")
    await expect(welcome).to_be_visible()
    examples = welcome.locator(".example")
    assert await examples.count() >= 3
    await examples.first.click()
    await expect(page.locator(".msg.user").last).to_have_text(await examples.first.inner_text())
    await expect(page.locator(".msg.assistant").last).to_have_text("Ducks glide / on the pond.")
    await expect(welcome).to_be_hidden()
    assert page.errors == []  # type: ignore[attr-defined]


async def test_copy_regenerate_and_edit(page: Page, gateway_stack: GatewayStack) -> None:
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway_stack.url)
    gateway_stack.model.script([reply("First **answer**."), reply("Second answer."), reply("Edited answer.")])
    await page.goto(gateway_stack.url)
    await send(page, "Tell me something")
    first = page.locator(".msg.assistant").last
    await expect(first).to_have_text("First answer.")
    actions = page.locator(".reply-actions").last
    await actions.locator("button.copy-reply").click()
    await expect(actions.locator("button.copy-reply")).to_have_text("Copied")
    assert await page.evaluate("navigator.clipboard.readText()") == "First **answer**."

    await actions.locator("button.regenerate").click()
    await expect(page.locator(".msg.assistant")).to_have_count(2)
    await expect(page.locator(".msg.assistant").last).to_have_text("Second answer.")
    await expect(page.locator(".msg.user")).to_have_count(2)
    await expect(page.locator(".msg.user").last).to_have_text("Tell me something")

    turn = page.locator(".user-turn").first
    await turn.hover()
    await turn.locator("button.edit").click()
    editor = turn.locator(".editor textarea")
    await expect(editor).to_have_value("Tell me something")
    await editor.fill("Tell me something else")
    await editor.press("Enter")
    await expect(page.locator(".msg.assistant").last).to_have_text("Edited answer.")
    await expect(page.locator(".msg.user").last).to_have_text("Tell me something else")
    # All in one chat: the edited message continued the same task.
    task_id = await page.locator("#task-list li.open").get_attribute("data-task-id")
    assert task_id
    assert page.errors == []  # type: ignore[attr-defined]


async def test_each_reply_shows_its_model_tokens_and_timings(page: Page, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script([reply("Counted.")])
    await page.goto(gateway_stack.url)
    await send(page, "Count my tokens")
    stats = page.locator(".reply-actions .stats").last
    await expect(stats).to_contain_text("scripted")
    await expect(stats).to_contain_text(" tokens")
    await expect(stats).to_contain_text("first token")
    text = await stats.inner_text()
    assert text.count("·") >= 3, text
    assert page.errors == []  # type: ignore[attr-defined]


TABLE_AND_CODE = """Here is a table:

| Duck | Sound |
|------|-------|
| Mallard | quack |
| Teal | peep |

```python
def quack(times: int) -> str:
    return "quack " * times
```
"""


async def test_markdown_tables_and_highlighted_code(page: Page, gateway_stack: GatewayStack) -> None:
    await page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway_stack.url)
    gateway_stack.model.script([reply(TABLE_AND_CODE)])
    await page.goto(gateway_stack.url)
    await send(page, "A table and some code, please")
    bubble = page.locator(".msg.assistant").last
    await expect(bubble.locator("table th")).to_have_text(["Duck", "Sound"])
    await expect(bubble.locator("table tbody tr")).to_have_count(2)
    block = bubble.locator(".code-block")
    await expect(block.locator(".code-head span")).to_have_text("python")
    await expect(block.locator("code .hljs-keyword").first).to_have_text("def")
    assert await block.locator("code [class^=hljs-]").count() >= 3
    await block.locator("button.copy").click()
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith("def quack(times: int) -> str:")
    colour = await block.locator("code .hljs-keyword").first.evaluate("(node) => getComputedStyle(node).color")
    plain = await block.locator("code").evaluate("(node) => getComputedStyle(node).color")
    assert colour != plain, "keywords are coloured"
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_failed_send_keeps_the_input_and_an_empty_one_says_so(page: Page, gateway_stack: GatewayStack) -> None:
    await page.goto(gateway_stack.url)
    await page.fill("#input", "   ")
    await page.press("#input", "Enter")
    await expect(page.locator("#composer-hint")).to_have_text("Type a message first.")
    await expect(page.locator("#log .msg")).to_have_count(0)

    too_long = "quack " * 6000
    await page.fill("#input", too_long)
    await page.press("#input", "Enter")
    await expect(page.locator("#composer-hint")).to_contain_text("the limit is 32,000")
    await expect(page.locator("#input")).to_have_value(too_long)

    # The gateway refuses the message (here: its backends are busy); the text stays, nothing is logged.
    await page.route(
        "**/v1/chat",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"error": {"code": "UNAVAILABLE", "message": "runtime service is unavailable"}}',
        ),
    )
    await page.fill("#input", "Please keep this text")
    await page.press("#input", "Enter")
    await expect(page.locator("#banner")).to_contain_text("runtime service is unavailable")
    await expect(page.locator("#input")).to_have_value("Please keep this text")
    await expect(page.locator("#log .msg.user")).to_have_count(0)
    await page.unroute("**/v1/chat")
    gateway_stack.model.script([reply("Got it this time.")])
    await page.press("#input", "Enter")
    await expect(page.locator(".msg.assistant").last).to_have_text("Got it this time.")
    # The input is cleared once the message is sent; waited for, as the page clears it after.
    await expect(page.locator("#input")).to_have_value("")


async def test_chats_are_searched_renamed_and_deleted(
    page: Page, gateway_stack: GatewayStack, api: httpx.AsyncClient
) -> None:
    tag = uuid.uuid4().hex[:6]
    gateway_stack.model.script([reply("One."), reply("Two.")])
    first = (await api.post("/v1/chat", json={"message": f"pelican {tag}"})).json()["task_id"]
    second = (await api.post("/v1/chat", json={"message": f"heron {tag}"})).json()["task_id"]
    await page.goto(gateway_stack.url)
    titles = page.locator("#task-list .task-title")
    await expect(titles.filter(has_text=tag)).to_have_count(2)

    await page.fill("#task-search", f"heron {tag}")
    await expect(titles).to_have_text([f"heron {tag}"])
    await page.fill("#task-search", f"nothing-like-this-{tag}")
    await expect(page.locator("#task-none")).to_be_visible()
    await page.fill("#task-search", tag)
    await expect(titles).to_have_count(2)

    item = page.locator(f'#task-list li[data-task-id="{first}"]')
    await item.hover()
    await item.locator("button.rename").click()
    await item.locator(".rename-form input").fill(f"Renamed pelican {tag}")
    await item.locator(".rename-form input").press("Enter")
    await expect(item.locator(".task-title")).to_have_text(f"Renamed pelican {tag}")
    assert (await api.get(f"/v1/tasks/{first}")).json()["title"] == f"Renamed pelican {tag}"

    other = page.locator(f'#task-list li[data-task-id="{second}"]')
    await other.hover()
    await other.locator("button.delete").click()
    await expect(other.locator("button.delete")).to_have_text("Delete?")
    await other.locator("button.delete").click()
    await expect(other).to_have_count(0)
    assert (await api.get(f"/v1/tasks/{second}")).status_code == 404
    await page.reload()
    await expect(page.locator(f'#task-list li[data-task-id="{second}"]')).to_have_count(0)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_approvals_tab_lists_what_the_api_lists(
    page: Page, gateway_stack: GatewayStack, api: httpx.AsyncClient
) -> None:
    # Two approvals opened outside WebChat, by REST clients.
    gateway_stack.model.script(
        [{"action": "call_tool", "tool": "make_dir", "arguments": {"path": f"outside-{n}"}} for n in range(2)]
    )
    opened = []
    for n in range(2):
        task = (await api.post("/v1/chat", json={"message": f"Make folder outside-{n}"})).json()
        assert task["status"] == "waiting_approval", task
        opened.append(task["task_id"])
    await page.goto(gateway_stack.url)
    await page.click("[data-panel=approvals]")
    listed = (await api.get("/v1/approvals", params={"state": "pending", "page_size": 500})).json()["approvals"]
    ids = sorted(approval["id"] for approval in listed)
    assert len(ids) >= 2
    cards = page.locator("#approval-list .approval-card")
    await expect(cards).to_have_count(len(ids))
    shown = sorted([str(await card.get_attribute("data-approval-id")) for card in await cards.all()])
    assert shown == ids
    await expect(page.locator("#approval-count")).to_have_text(str(len(ids)))
    for task_id in opened:
        await api.post(f"/v1/tasks/{task_id}/cancel", json={})
        await wait_for_status(api, task_id, "cancelled")
    await page.click("[data-panel=chats]")
    await page.click("[data-panel=approvals]")
    remaining = (await api.get("/v1/approvals", params={"state": "pending"})).json()["approvals"]
    await expect(cards).to_have_count(len(remaining))
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_slash_completes_skill_names_and_sends_the_skill(
    page: Page, gateway_stack: GatewayStack, api: httpx.AsyncClient
) -> None:
    # The skill asks for three looks before an answer (three different ones: the runtime never
    # runs an identical call twice in a turn).
    looks = [{"action": "call_tool", "tool": "list_dir", "arguments": arguments} for arguments in ({"path": "."}, {}, {"path": "src"})]
    gateway_stack.model.script([*looks, reply("Analysed.")])
    await page.goto(gateway_stack.url)
    await page.fill("#input", "")
    await page.type("#input", "/analy")
    options = page.locator("#skill-completions li")
    await expect(options.first).to_contain_text("/analyze-project")
    await page.press("#input", "Tab")
    await expect(page.locator("#input")).to_have_value("/analyze-project ")
    await page.type("#input", "look at this project")
    await page.press("#input", "Enter")
    await expect(page.locator(".msg.assistant").last).to_have_text("Analysed.")
    await expect(page.locator("#log details.step.skill")).to_contain_text("using skill analyze-project")
    await expect(page.locator(".msg.user").last).to_have_text("look at this project")

    await page.fill("#input", "/no-such-skill do it")
    await page.press("#input", "Enter")
    await expect(page.locator("#composer-hint")).to_contain_text('There is no skill named "no-such-skill"')
    await page.fill("#input", "/analyze-project")
    await page.keyboard.press("Escape")
    await page.press("#input", "Enter")
    await expect(page.locator("#composer-hint")).to_have_text("Add your message after /analyze-project.")
    assert page.errors == []  # type: ignore[attr-defined]
