// The conversation view: renders a task's events as they arrive — messages, the reply streamed
// token by token, each step (tool calls with arguments and results, memory, skills) folded by
// default, approval cards, status and errors. Each reply carries copy / regenerate actions and
// its figures (model, tokens, time to first token, duration, from the turn's model_call events);
// each user message can be edited and sent again. Model and tool text is only ever set as text or
// through renderMarkdown (sanitised DOM nodes, never an HTML string).

import { api } from "./api.js";
import { copyButton, renderMarkdown } from "./markdown.js";

const RESTING = new Set(["completed", "failed", "cancelled", "waiting_approval"]);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function seconds(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

// "SmolLM2 · 42 tokens · first token 180 ms · 2.4 s" for the model calls of one turn.
export function replyStats(calls, durationMs) {
  if (!calls.length) return "";
  const last = calls[calls.length - 1];
  const tokens = calls.reduce((sum, call) => sum + ((call.usage || {}).completion_tokens || 0), 0);
  const parts = [last.model || "model", `${tokens} token${tokens === 1 ? "" : "s"}`];
  if (typeof last.first_token_ms === "number") parts.push(`first token ${seconds(last.first_token_ms)}`);
  if (durationMs > 0) parts.push(seconds(durationMs));
  if (calls.length > 1) parts.push(`${calls.length} model calls`);
  return parts.join(" · ");
}

function smallButton(label, className, onClick) {
  const node = el("button", `${className} secondary small`, label);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function pretty(value) {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value, null, 2);
}

export class Conversation {
  constructor(log, { onStatus, onApprovalChange, onResend, onChange }) {
    this.log = log;
    this.onStatus = onStatus;
    this.onApprovalChange = onApprovalChange;
    this.onResend = onResend; // (text) => sends text as the next message of this chat
    this.onChange = onChange || (() => {}); // the log gained or lost its first entries
    this.reset();
  }

  reset() {
    this.log.replaceChildren();
    this.taskId = null;
    this.status = null;
    this.lastSeq = 0;
    this.steps = new Map(); // call_id -> step element
    this.cards = new Map(); // approval_id -> approval card
    this.draft = null; // the assistant bubble being streamed
    this.turn = { text: "", start: null, calls: [] }; // the turn being shown: its message and model calls
    this.onChange();
  }

  isEmpty() {
    return this.log.childElementCount === 0;
  }

  scroll() {
    this.log.scrollTop = this.log.scrollHeight;
  }

  add(node) {
    const first = this.isEmpty();
    this.log.append(node);
    this.scroll();
    if (first) this.onChange();
    return node;
  }

  // The user's message, with an Edit action that opens it in place and sends the edited text.
  userMessage(text) {
    const wrap = el("div", "turn user-turn");
    const bubble = el("div", "msg user", text);
    const actions = el("div", "msg-actions");
    actions.append(smallButton("Edit", "edit", () => this.edit(wrap, bubble, text)));
    wrap.append(bubble, actions);
    return this.add(wrap);
  }

  edit(wrap, bubble, text) {
    if (wrap.querySelector(".editor")) return;
    const editor = el("form", "editor");
    const area = el("textarea");
    area.value = text;
    area.setAttribute("aria-label", "Edit your message");
    const save = el("button", "save", "Send edited");
    save.type = "submit";
    const cancel = smallButton("Cancel", "cancel", () => close());
    const row = el("div", "msg-actions");
    row.append(save, cancel);
    editor.append(area, row);
    const close = () => {
      editor.remove();
      bubble.hidden = false;
    };
    editor.addEventListener("submit", (event) => {
      event.preventDefault();
      const edited = area.value.trim();
      if (!edited) return;
      close();
      this.onResend(edited);
    });
    area.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        editor.requestSubmit();
      } else if (event.key === "Escape") close();
    });
    bubble.hidden = true;
    wrap.append(editor);
    area.focus();
  }

  // Removes the bubble of a message that never reached the runtime (the send failed).
  dropPendingUser() {
    if (!this.pendingUserText) return;
    const last = [...this.log.querySelectorAll(".user-turn")].pop();
    if (last && !last.dataset.seq) last.remove();
    this.pendingUserText = null;
    this.onChange();
  }

  notice(kind, text) {
    return this.add(el("div", `msg ${kind}`, text));
  }

  step(kind, icon, title) {
    const details = el("details", `step ${kind}`);
    const summary = el("summary");
    summary.append(el("span", "icon", icon), el("span", "title", title), el("span", "state"));
    details.append(summary);
    return { details, summary, body: details.appendChild(el("div", "step-body")) };
  }

  section(parent, label, value) {
    parent.append(el("div", "label", label), el("pre", "data", pretty(value)));
  }

  // Applies one event (from a stored page or a live stream) to the view.
  render(event) {
    if (event.seq) this.lastSeq = Math.max(this.lastSeq, event.seq);
    if (event.task_id) this.taskId = event.task_id;
    const data = event.data || {};
    const handler = this[`on_${event.type}`];
    if (handler) handler.call(this, data, event);
  }

  on_user_message(data, event) {
    this.turn = { text: data.text, start: event.create_time, calls: [] };
    // The page shows the user's own message as soon as it is sent.
    if (this.pendingUserText === data.text) {
      this.pendingUserText = null;
      const last = [...this.log.querySelectorAll(".user-turn")].pop();
      if (last) last.dataset.seq = String(event.seq);
      return;
    }
    this.userMessage(data.text).dataset.seq = String(event.seq);
  }

  on_model_call(data) {
    if (!data.purpose) this.turn.calls.push(data);
  }

  on_model_token(data) {
    if (!data.reply) return;
    if (!this.draft) {
      this.draft = this.add(el("div", "msg assistant streaming"));
      this.draft.dataset.streamed = "";
    }
    this.draft.textContent += data.reply;
    this.scroll();
  }

  on_directive() {
    // A directive that is not an answer (a tool call, …): its streamed text, if any, is not a reply.
    if (this.draft && !this.draft.textContent) this.dropDraft();
  }

  dropDraft() {
    if (this.draft) this.draft.remove();
    this.draft = null;
  }

  on_assistant_message(data, event) {
    const bubble = this.draft || this.add(el("div", "msg assistant"));
    this.draft = null;
    bubble.classList.remove("streaming");
    bubble.replaceChildren(renderMarkdown(data.text));
    const turn = this.turn;
    const duration = turn.start && event.create_time ? Date.parse(event.create_time) - Date.parse(turn.start) : 0;
    const footer = el("div", "msg-actions reply-actions");
    const asked = turn.text;
    footer.append(copyButton("Copy", data.text, "copy-reply"));
    if (asked) footer.append(smallButton("Regenerate", "regenerate", () => this.onResend(asked)));
    const stats = replyStats(turn.calls, duration);
    if (stats) footer.append(el("span", "stats", stats));
    bubble.after(footer);
    this.scroll();
  }

  on_tool_call(data) {
    this.dropDraft();
    const step = this.step("tool", "⚙", data.tool);
    step.details.dataset.callId = data.call_id;
    // A client's own function (OpenAI API `tools`): the client runs it, not DuckLM.
    step.summary.querySelector(".state").textContent = data.client ? "for the client to run" : "running…";
    this.section(step.body, "arguments", data.arguments);
    this.steps.set(data.call_id, step);
    this.add(step.details);
  }

  on_tool_result(data) {
    let step = this.steps.get(data.call_id);
    if (!step) {
      step = this.step("tool", "⚙", "tool");
      this.add(step.details);
    }
    step.details.classList.add(data.ok ? "ok" : "failed");
    step.summary.querySelector(".state").textContent = data.ok ? "done" : "failed";
    if (data.ok) this.section(step.body, "result", data.result);
    else this.section(step.body, "error", data.error || data.result);
    this.scroll();
  }

  on_memory_recalled(data) {
    const ids = data.memory_ids || [];
    // The recall at the start of every turn is only worth showing when it found something.
    if (data.automatic && !ids.length && !data.error) return;
    const step = this.step("memory", "◉", `recalled ${ids.length} memor${ids.length === 1 ? "y" : "ies"}`);
    this.section(step.body, "query", data.query);
    if (data.memories) this.section(step.body, "memories", data.memories);
    if (data.error) this.section(step.body, "error", data.error);
    this.add(step.details);
  }

  on_memory_stored(data) {
    const step = this.step("memory", "✚", "remembered");
    this.section(step.body, "text", data.text);
    this.add(step.details);
  }

  on_skill_used(data) {
    const step = this.step("skill", "✦", `using skill ${data.skill}`);
    if (data.error) this.section(step.body, "error", data.error);
    if (data.body) {
      const body = el("div", "markdown");
      body.append(renderMarkdown(data.body));
      step.body.append(body);
    }
    this.add(step.details);
  }

  on_context_compacted(data) {
    const step = this.step("compaction", "≡", "earlier steps summarised");
    this.section(step.body, "summary", data.summary);
    this.add(step.details);
  }

  on_task_resumed() {
    this.notice("info", "The runtime restarted and picked this task up again.");
  }

  on_error(data) {
    this.dropDraft();
    if (data.code === "invalid_directive") {
      const step = this.step("warning", "⚠", "the model's answer was not valid; it was asked again");
      this.section(step.body, "why", data.message);
      this.add(step.details);
      return;
    }
    this.notice("error", `${data.code || "error"}: ${data.message || ""}`);
  }

  on_approval_requested(data) {
    this.dropDraft();
    const card = el("div", "approval-card");
    card.dataset.approvalId = data.approval_id;
    card.append(el("div", "approval-title", `DuckLM wants to run ${data.tool}`));
    card.append(el("pre", "data", pretty(data.arguments)));
    const actions = el("div", "approval-actions");
    const approve = el("button", "approve", "Approve");
    const approveTask = el("button", "approve-task secondary", "Approve for this task");
    const deny = el("button", "deny danger", "Deny");
    approve.type = approveTask.type = deny.type = "button";
    approve.title = "Allow this exact action once";
    approveTask.title = "Allow this exact action for the rest of this task";
    actions.append(approve, approveTask, deny);
    const outcome = el("div", "approval-outcome");
    card.append(actions, outcome);
    const decide = async (path, body, label) => {
      for (const button of [approve, approveTask, deny]) button.disabled = true;
      outcome.textContent = `${label}…`;
      try {
        await api("POST", `/v1/approvals/${encodeURIComponent(data.approval_id)}/${path}`, body);
        this.decided(data.approval_id, path === "deny" ? "denied" : "approved");
        this.onApprovalChange({ ...data, task_id: this.taskId }, path);
      } catch (err) {
        outcome.textContent = err.describe ? err.describe() : String(err);
        card.classList.add("failed");
        for (const button of [approve, approveTask, deny]) button.disabled = false;
      }
    };
    approve.addEventListener("click", () => decide("approve", { scope: "once", decided_by: "webchat" }, "Approving"));
    approveTask.addEventListener("click", () => decide("approve", { scope: "task", decided_by: "webchat" }, "Approving"));
    deny.addEventListener("click", () => decide("deny", { decided_by: "webchat" }, "Denying"));
    this.cards.set(data.approval_id, card);
    this.add(card);
  }

  decided(approvalId, decision, reason) {
    const card = this.cards.get(approvalId);
    if (!card) return;
    card.classList.add(decision === "approved" ? "approved" : "denied");
    card.querySelector(".approval-actions")?.remove();
    const mark = decision === "approved" ? "✓ Approved" : `✗ ${decision[0].toUpperCase()}${decision.slice(1)}`;
    card.querySelector(".approval-outcome").textContent = `${mark}${reason ? `: ${reason}` : ""}`;
  }

  on_approval_decided(data) {
    this.decided(data.approval_id, data.decision, data.reason);
  }

  on_status_changed(data) {
    this.status = data.to;
    const explained = this.log.lastElementChild?.classList.contains("error");
    if (data.to === "failed" && !explained) this.notice("error", `The task failed${data.reason ? ` (${data.reason})` : ""}.`);
    if (data.to === "cancelled") this.notice("info", "The task was cancelled.");
    if (data.to !== "running") this.dropDraftIfEmpty();
    if (!this.replaying) this.onStatus(data.to);
  }

  dropDraftIfEmpty() {
    if (this.draft && !this.draft.textContent.trim()) this.dropDraft();
  }

  isResting() {
    return RESTING.has(this.status);
  }
}
