"""WebChat in headless Chromium (Debian's package, driven by Playwright): a streamed reply, an
approval clicked in the page, model and tool output that cannot run script, the login form, and
the skills and memory panels, and a fresh stack with a few chats and an approval."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.gateway.conftest import GatewayStack, SecuredGateway, scripted_stack
from tests.scripted_model import ScriptedModel

# Records every text the streaming reply bubble shows, in order: each delta replaces the
# bubble's text node, and the mutation records keep the replaced nodes with their text.
RECORD_STREAM = """
() => {
  window.__streamed = [];
  new MutationObserver((records) => {
    for (const record of records) {
      if (!record.target.classList || !record.target.classList.contains("streaming")) continue;
      for (const node of record.addedNodes) {
        if (node.nodeType === Node.TEXT_NODE) window.__streamed.push(node.data);
      }
    }
  }).observe(document.getElementById("log"), { childList: true, subtree: true });
}
"""


async def send(page: Page, text: str) -> None:
    await page.fill("#input", text)
    await page.press("#input", "Enter")


async def test_a_message_gets_a_streamed_reply(page: Page, gateway_stack: GatewayStack) -> None:
    answer = "Hello from DuckLM! This reply arrives a few characters at a time."
    gateway_stack.model.script([{"action": "respond", "message": answer}])
    await page.goto(gateway_stack.url)
    await expect(page.locator("#health")).to_have_text("all services up")
    await page.evaluate(RECORD_STREAM)
    await send(page, "Say hello, slowly")

    await expect(page.locator(".msg.user").last).to_have_text("Say hello, slowly")
    reply = page.locator(".msg.assistant").last
    await expect(reply).to_have_text(answer)
    await expect(reply).not_to_have_class("msg assistant streaming")
    await expect(page.locator("#status")).to_have_text("done")
    streamed: list[str] = await page.evaluate("window.__streamed")
    partial = [text for text in streamed if text and text != answer]
    assert len(partial) >= 3, streamed
    assert all(answer.startswith(text) for text in streamed), streamed
    assert [len(text) for text in partial] == sorted(len(text) for text in partial)

    # The conversation is listed, and opening it again shows it from its stored events.
    await page.click("#new-chat")
    await expect(page.locator("#log .msg")).to_have_count(0)
    await page.locator("#task-list .task-title", has_text="Say hello, slowly").first.click()
    await expect(page.locator(".msg.assistant").last).to_have_text(answer)
    await expect(page.locator(".msg.user")).to_have_count(1)
    assert page.errors == []  # type: ignore[attr-defined]


async def test_approve_a_gated_tool_in_the_page(
    page: Page, gateway_stack: GatewayStack, api: httpx.AsyncClient
) -> None:
    notes = "# Duck notes\n\n- ducks float\n- ducks quack\n"
    gateway_stack.model.script(
        [
            {
                "action": "call_tool",
                "tool": "write_file",
                "arguments": {"path": "duck-notes.md", "content": notes},
            },
            {
                "action": "respond",
                "message": "I wrote **duck-notes.md** with two facts:\n\n- ducks float\n- ducks quack",
            },
        ]
    )
    await page.goto(gateway_stack.url)
    await send(page, "Write my duck notes to duck-notes.md")

    card = page.locator("#log .approval-card")
    await expect(card).to_be_visible()
    await expect(card.locator(".approval-title")).to_have_text("DuckLM wants to run write_file")
    await expect(card.locator("pre")).to_contain_text('"path": "duck-notes.md"')
    await expect(page.locator("#status")).to_have_text("waiting for your approval")
    waiting = (await api.get("/v1/tasks", params={"status": "waiting_approval"})).json()["tasks"]
    await expect(page.locator("#approval-count")).to_have_text(str(len(waiting)))
    tool = page.locator("#log details.step.tool")
    await expect(tool).to_have_count(1)
    assert await tool.get_attribute("open") is None, "steps are folded by default"

    await card.locator("button.approve").click()
    await expect(card).to_have_class("approval-card approved")
    await expect(tool.locator(".state")).to_have_text("done")
    reply = page.locator(".msg.assistant").last
    await expect(reply).to_contain_text("I wrote duck-notes.md with two facts")
    await expect(reply.locator("strong")).to_have_text("duck-notes.md")
    await expect(reply.locator("li")).to_have_count(2)
    await expect(page.locator("#status")).to_have_text("done")
    assert (gateway_stack.workspace / "duck-notes.md").read_text() == notes
    if len(waiting) == 1:
        await expect(page.locator("#approval-count")).to_be_hidden()

    await tool.locator("summary").click()
    await expect(tool.locator(".step-body")).to_contain_text('"bytes_written"')
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_approvals_panel_and_stop(page: Page, gateway_stack: GatewayStack) -> None:
    gateway_stack.model.script(
        [{"action": "call_tool", "tool": "make_dir", "arguments": {"path": "never-made"}}]
    )
    await page.goto(gateway_stack.url)
    await send(page, "Make a folder, then I'll change my mind")
    card = page.locator("#log .approval-card")
    await expect(card).to_be_visible()
    approval_id = await card.get_attribute("data-approval-id")
    await page.click("[data-panel=approvals]")
    listed = page.locator(f'#approval-list .approval-card[data-approval-id="{approval_id}"]')
    await expect(listed.locator(".approval-title")).to_have_text("make_dir")

    await page.click("#stop")
    await expect(page.locator("#status")).to_have_text("cancelled")
    await expect(page.locator("#log .msg.info").last).to_have_text("The task was cancelled.")
    await page.click("[data-panel=chats]")
    await page.click("[data-panel=approvals]")
    await expect(listed).to_have_count(0)
    assert not (gateway_stack.workspace / "never-made").exists()
    assert page.errors == []  # type: ignore[attr-defined]


MALICIOUS = (
    'Look: <script>window.__pwned = "script"</script> <img src=x onerror="window.__pwned = \'img\'"> '
    "[click me](javascript:window.__pwned='link') and **bold** `<b>code</b>`"
)


async def test_script_in_model_or_tool_output_does_not_run(page: Page, gateway_stack: GatewayStack) -> None:
    (gateway_stack.workspace / "evil.html").write_text(
        '<script>window.__pwned = "tool"</script><svg onload="window.__pwned=1">'
    )
    gateway_stack.model.script(
        [
            {"action": "call_tool", "tool": "read_file", "arguments": {"path": "evil.html"}},
            {"action": "respond", "message": MALICIOUS},
        ]
    )
    await page.goto(gateway_stack.url)
    await send(page, "Show me evil.html")
    reply = page.locator(".msg.assistant").last
    await expect(reply).to_contain_text("<script>window.__pwned")
    await expect(reply).to_contain_text('<img src=x onerror="window.__pwned')
    await expect(reply.locator("strong")).to_have_text("bold")
    await expect(reply.locator("code")).to_have_text("<b>code</b>")
    tool = page.locator("#log details.step.tool")
    await tool.locator("summary").click()
    await expect(tool.locator(".step-body")).to_contain_text('<script>window.__pwned = \\"tool\\"</script>')

    assert await page.evaluate("window.__pwned") is None
    log = page.locator("#log")
    assert await log.locator("script, img, svg, b").count() == 0
    assert await log.locator("a").count() == 0, "a javascript: link is shown as text, not as a link"
    assert page.errors == []  # type: ignore[attr-defined]


async def test_login_is_needed_when_the_gateway_has_a_token(
    page: Page, secured_gateway: SecuredGateway, gateway_stack: GatewayStack
) -> None:
    await page.goto(secured_gateway.url)
    await expect(page.locator("#login")).to_be_visible()
    status = await page.evaluate("fetch('/v1/tasks').then((response) => response.status)")
    assert status == 401, "a request without the token is refused"

    await page.fill("#login-token", "not-the-token-at-all")
    await page.press("#login-token", "Enter")
    await expect(page.locator("#login-error")).to_have_text("That token is not right.")
    await page.fill("#login-token", secured_gateway.token)
    await page.press("#login-token", "Enter")
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#logout")).to_be_visible()

    gateway_stack.model.script([{"action": "respond", "message": "Logged in and chatting."}])
    await send(page, "Am I in?")
    await expect(page.locator(".msg.assistant").last).to_have_text("Logged in and chatting.")
    cookies = await page.context.cookies(secured_gateway.url)
    session = next(cookie for cookie in cookies if cookie["name"] == "ducklm_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict"
    assert session["value"] != secured_gateway.token
    assert page.errors == []  # type: ignore[attr-defined]


async def test_skills_proposals_and_memory_panels(
    page: Page, gateway_stack: GatewayStack, api: httpx.AsyncClient
) -> None:
    name = f"duck-call-{uuid.uuid4().hex[:6]}"
    skill_md = (
        f"---\nname: {name}\ndescription: Imitates duck calls. Use when asked to quack.\n---\n\n"
        f"# {name}\n\nQuack <b>twice</b>.\n"
    )
    proposal: dict[str, Any] = (
        await api.post("/v1/skill-proposals", json={"skill_md": skill_md, "rationale": "asked often"})
    ).json()
    memory = (
        await api.post("/v1/memories", json={"text": f"The pond key is under the {name} stone."})
    ).json()

    await page.goto(gateway_stack.url)
    await page.click("[data-panel=skills]")
    item = page.locator(f'.proposal[data-proposal-id="{proposal["id"]}"]')
    await expect(item).to_contain_text("asked often")
    await item.locator("button.promote").click()
    promoted = page.locator(f'.proposal[data-proposal-id="{proposal["id"]}"]')
    await expect(promoted.locator(".chip")).to_have_text("promoted")
    skill = page.locator(f'details.skill[data-skill="{name}"]')
    await skill.locator("summary").click()
    await expect(skill.locator(".markdown")).to_contain_text("Quack <b>twice</b>.")
    assert await skill.locator("b").count() == 0

    await page.click("[data-panel=memory]")
    await page.fill("#memory-query", f"Where is the pond key? {name}")
    await page.press("#memory-query", "Enter")
    found = page.locator("#memory-results .memory", has_text=memory["text"])
    await expect(found).to_be_visible()
    await found.locator("button", has_text="Forget").click()
    await expect(found).to_have_count(0)
    assert (await api.get(f"/v1/memories/{memory['id']}")).status_code == 404
    assert page.errors == []  # type: ignore[attr-defined]


async def test_the_memory_panel_promotes_a_conversations_memory(
    page: Page, gateway_stack: GatewayStack, api: httpx.AsyncClient
) -> None:
    name = uuid.uuid4().hex[:6]
    memory = (
        await api.post("/v1/memories", json={"text": f"The heron {name} nests by the weir.", "task_id": f"task-{name}"})
    ).json()
    assert memory["scope"] == "task"
    await page.goto(gateway_stack.url)
    await page.click("[data-panel=memory]")
    await page.fill("#memory-query", f"Where does the heron {name} nest?")
    await page.press("#memory-query", "Enter")
    found = page.locator("#memory-results .memory", has_text=memory["text"])
    await expect(found).to_contain_text("one conversation")
    await found.locator("button", has_text="Promote").click()
    await expect(found).to_contain_text("kept long-term")
    assert (await api.get(f"/v1/memories/{memory['id']}")).json()["scope"] == "long_term"
    assert page.errors == []  # type: ignore[attr-defined]


async def test_a_fresh_stack_with_chats_and_an_approval(page: Page, scripted: ScriptedModel, tmp_path: Path) -> None:
    """A fresh stack with a few everyday chats, then an approval, photographed into tmp_path (the
    README's picture comes from the real model: scripts/readme_screenshot.py)."""
    async with scripted_stack(tmp_path / "stack", scripted) as stack:
        (stack.workspace / "notes").mkdir(parents=True, exist_ok=True)
        (stack.workspace / "todo.txt").write_text("buy bread\n")
        async with httpx.AsyncClient(base_url=stack.url, timeout=60.0) as api:
            await api.post("/v1/memories", json={"text": "Ada keeps her notes in Markdown.", "kind": "fact"})
            scripted.script(
                [
                    {
                        "action": "respond",
                        "message": "I can chat, read and write files in your workspace (asking "
                        "you before any change), use skills and remember things.",
                    },
                    {"action": "call_tool", "tool": "list_dir", "arguments": {}},
                    {
                        "action": "respond",
                        "message": "Your workspace has a **notes/** folder and **todo.txt**.",
                    },
                ]
            )
            await api.post("/v1/chat", json={"message": "What can you do?"})
            await api.post("/v1/chat", json={"message": "What is in my workspace?"})
        scripted.script(
            [
                {
                    "action": "call_tool",
                    "tool": "write_file",
                    "arguments": {
                        "path": "notes/ducks.md",
                        "content": "# Ducks\n\n- ducks float\n- ducks quack\n",
                    },
                },
                {
                    "action": "respond",
                    "message": "Done! I wrote **notes/ducks.md** in Markdown, as you like it:\n\n"
                    "- ducks float\n- ducks quack",
                },
            ]
        )
        await page.goto(stack.url)
        await send(page, "Write my duck facts to notes/ducks.md")
        await page.locator("#log .approval-card button.approve").click()
        await expect(page.locator(".msg.assistant").last).to_contain_text("ducks quack")
        await expect(page.locator("#status")).to_have_text("done")
        await expect(page.locator("#task-list li")).to_have_count(3)
        shot = tmp_path / "webchat.png"
        await page.screenshot(path=str(shot))
        assert shot.stat().st_size > 0
        assert page.errors == []  # type: ignore[attr-defined]
