// WebChat: wires the page together — the composer, the live streams, the sidebar panels (a drawer
// on narrow screens), the welcome screen, the theme, login and the health indicator. No build
// step; ES modules served by the gateway.

import { ApiError, api, stream, whenUnauthorized } from "./api.js";
import { Composer } from "./composer.js";
import { Conversation } from "./conversation.js";
import { Panels } from "./panels.js";
import { setUpTheme } from "./theme.js";

const $ = (id) => document.getElementById(id);
const input = $("input");
const send = $("send");
const stop = $("stop");
const statusEl = $("status");
const banner = $("banner");

const STATUS_TEXT = {
  ready: "ready",
  pending: "starting…",
  running: "working…",
  waiting_approval: "waiting for your approval",
  completed: "done",
  failed: "failed",
  cancelled: "cancelled",
};
const ACTIVE = new Set(["pending", "running", "waiting_approval"]);

let live = null; // AbortController of the stream the page is reading

function showError(err) {
  banner.textContent = err instanceof ApiError ? err.describe() : String(err);
  banner.hidden = false;
}

function clearError() {
  banner.hidden = true;
  banner.textContent = "";
}

function showStatus(status) {
  statusEl.textContent = STATUS_TEXT[status] || status;
  statusEl.dataset.status = status;
  stop.hidden = !ACTIVE.has(status) || !conversation.taskId;
}

const conversation = new Conversation($("log"), {
  onResend: (text) => sendMessage({ text, skill: "" }),
  onChange: () => {
    $("welcome").hidden = $("log").childElementCount > 0;
  },
  onStatus: (status) => {
    showStatus(status);
    if (status !== "running") panels.refreshTasks();
    if (status === "waiting_approval") panels.refreshApprovals();
  },
  onApprovalChange: (approval) => {
    panels.refreshApprovals();
    if (conversation.taskId) follow(conversation.taskId);
  },
});

const panels = new Panels({
  onOpenTask: (taskId) => {
    closeDrawer();
    openTask(taskId);
  },
  onDeleted: (taskId) => {
    if (taskId === conversation.taskId) newChat();
  },
  onDecided: (approval) => {
    if (approval.task_id === conversation.taskId) follow(conversation.taskId);
  },
  onError: showError,
});

function stopLive() {
  if (live) live.abort();
  live = null;
}

// Reads a stream of task events into the conversation; with `untilRest`, stops at the first
// status change that brings the task to rest.
async function read(events, untilRest) {
  for await (const item of events) {
    if (handle(item) && untilRest && conversation.isResting()) return;
  }
}

// Shows one Server-Sent Event; true when it was a status change.
function handle({ event, data }) {
  if (event === "error") {
    const error = data.error || {};
    showError(new ApiError(0, error.code || "ERROR", error.message || "the stream failed", error.service));
    return false;
  }
  conversation.render(data);
  return data.type === "status_changed";
}

// Sends one message (with a skill, when the box named one) and reads its events. Resolves true
// once the gateway accepted it: a refused send leaves the text in the box and nothing in the log.
async function sendMessage({ text, skill }) {
  clearError();
  stopLive();
  const controller = (live = new AbortController());
  send.disabled = true;
  conversation.pendingUserText = text;
  conversation.userMessage(text);
  showStatus("running");
  const body = { message: text, stream: true };
  if (skill) body.skill = skill;
  if (conversation.taskId) body.task_id = conversation.taskId;
  let accepted = false;
  try {
    const events = stream("POST", "/v1/chat", body, { signal: controller.signal });
    const first = await events.next(); // a refusal (400, 503…) throws here, before any event
    accepted = true;
    if (!first.done) {
      handle(first.value);
      await read(events, false);
    }
  } catch (err) {
    showError(err);
    if (!accepted) conversation.dropPendingUser();
    showStatus(conversation.status || (accepted ? "failed" : "ready"));
  } finally {
    if (live === controller) live = null;
    send.disabled = false;
    input.focus();
    panels.markOpen(conversation.taskId);
    panels.refreshTasks();
  }
  return accepted;
}

// Follows a task that is working (or about to, after an approval) until it rests again.
async function follow(taskId) {
  stopLive();
  const controller = (live = new AbortController());
  const path = `/v1/tasks/${encodeURIComponent(taskId)}/events?stream=true&follow=true&after_seq=${conversation.lastSeq}`;
  try {
    await read(stream("GET", path, undefined, { signal: controller.signal }), true);
  } catch (err) {
    showError(err);
  } finally {
    controller.abort(); // a follow stream stays open until the client leaves
    if (live === controller) live = null;
  }
}

async function openTask(taskId) {
  clearError();
  stopLive();
  conversation.reset();
  try {
    const task = await api("GET", `/v1/tasks/${encodeURIComponent(taskId)}`);
    let token = "";
    do {
      const page = await api(
        "GET",
        `/v1/tasks/${encodeURIComponent(taskId)}/events?page_size=1000&page_token=${encodeURIComponent(token)}`,
      );
      conversation.replaying = true;
      for (const event of page.events) conversation.render(event);
      conversation.replaying = false;
      token = page.next_page_token;
    } while (token);
    conversation.status = task.status;
    showStatus(task.status);
    panels.markOpen(taskId);
    if (task.status === "running" || task.status === "pending") follow(taskId);
  } catch (err) {
    showError(err);
  }
}

function newChat() {
  stopLive();
  clearError();
  conversation.reset();
  showStatus("ready");
  panels.markOpen(null);
  input.focus();
}

new Composer({
  form: $("composer"),
  input,
  hint: $("composer-hint"),
  completions: $("skill-completions"),
  onSend: (message) => sendMessage(message),
});
for (const example of document.querySelectorAll("#examples .example")) {
  example.addEventListener("click", () => {
    input.value = example.textContent;
    $("composer").requestSubmit();
  });
}
$("new-chat").addEventListener("click", () => {
  closeDrawer();
  newChat();
});

// --- the sidebar as a drawer on narrow screens -------------------------------------------------

function openDrawer() {
  $("app").classList.add("drawer-open");
  $("scrim").hidden = false;
  $("menu").setAttribute("aria-expanded", "true");
}

function closeDrawer() {
  $("app").classList.remove("drawer-open");
  $("scrim").hidden = true;
  $("menu").setAttribute("aria-expanded", "false");
}

$("menu").addEventListener("click", () => ($("app").classList.contains("drawer-open") ? closeDrawer() : openDrawer()));
$("scrim").addEventListener("click", closeDrawer);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeDrawer();
});
setUpTheme($("theme"));
stop.addEventListener("click", async () => {
  if (!conversation.taskId) return;
  stop.disabled = true;
  try {
    await api("POST", `/v1/tasks/${encodeURIComponent(conversation.taskId)}/cancel`, { reason: "stopped in WebChat" });
    stopLive();
    await openTask(conversation.taskId);
  } catch (err) {
    showError(err);
  } finally {
    stop.disabled = false;
  }
});

// --- login (only when the gateway has a token) ---------------------------------------------

function showLogin() {
  stopLive();
  $("login").hidden = false;
  $("login-token").focus();
}

whenUnauthorized(showLogin);

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    await api("POST", "/v1/auth/login", { token: $("login-token").value });
    $("login-token").value = "";
    $("login").hidden = true;
    $("logout").hidden = false;
    start();
  } catch (err) {
    $("login-error").textContent = err.status === 401 ? "That token is not right." : err.describe();
  }
});
$("logout").addEventListener("click", async () => {
  await api("POST", "/v1/auth/logout").catch(() => {});
  window.location.reload();
});

// --- health ------------------------------------------------------------------------------------

async function checkHealth() {
  const health = $("health");
  try {
    const response = await fetch("/healthz", { credentials: "same-origin" });
    const report = await response.json();
    const down = Object.entries(report.services || {}).filter(([, state]) => state !== "serving");
    health.textContent = down.length ? `down: ${down.map(([name]) => name).join(", ")}` : "all services up";
    health.dataset.state = down.length ? "degraded" : "ok";
    health.title = Object.entries(report.services || {})
      .map(([name, state]) => `${name}: ${state}`)
      .join("\n");
  } catch {
    health.textContent = "gateway unreachable";
    health.dataset.state = "degraded";
  }
}

function start() {
  panels.refreshAll();
  input.focus();
}

async function boot() {
  checkHealth();
  setInterval(checkHealth, 30_000);
  setInterval(() => panels.refreshApprovals(), 10_000);
  try {
    const session = await api("GET", "/v1/auth/session");
    if (session.auth_required && !session.authenticated) {
      showLogin();
      return;
    }
    $("logout").hidden = !session.auth_required;
  } catch (err) {
    showError(err);
  }
  start();
}

boot();
