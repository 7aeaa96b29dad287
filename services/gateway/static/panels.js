// The sidebar: past chats (searched, renamed, deleted), pending approvals (exactly what
// GET /v1/approvals lists, from every chat and client), skills and skill proposals
// (promote / reject), and memory (search, forget, remember). Text from skills, proposals and
// memories is set as text or through renderMarkdown, never as HTML.

import { api } from "./api.js";
import { renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function button(label, className, onClick) {
  const node = el("button", className, label);
  node.type = "button";
  node.addEventListener("click", onClick);
  return node;
}

function when(time) {
  if (!time) return "";
  const date = new Date(time);
  const today = new Date().toDateString() === date.toDateString();
  return today ? date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : date.toLocaleDateString();
}

export class Panels {
  constructor({ onOpenTask, onDeleted, onDecided, onError }) {
    this.onOpenTask = onOpenTask;
    this.onDeleted = onDeleted;
    this.onDecided = onDecided;
    this.onError = onError;
    this.openTaskId = null;
    this.nextTasks = "";
    for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
      tab.addEventListener("click", () => this.show(tab.dataset.panel));
    }
    $("more-tasks").addEventListener("click", () => this.refreshTasks(true));
    $("task-search").addEventListener("input", () => this.refreshTasks());
    $("memory-search").addEventListener("submit", (event) => {
      event.preventDefault();
      this.searchMemory();
    });
    $("memory-remember").addEventListener("submit", (event) => {
      event.preventDefault();
      this.remember();
    });
  }

  show(name) {
    for (const tab of document.querySelectorAll(".tabs [role=tab]")) {
      tab.setAttribute("aria-selected", String(tab.dataset.panel === name));
    }
    for (const panel of document.querySelectorAll(".panel")) panel.hidden = panel.id !== `panel-${name}`;
    if (name === "skills") this.refreshSkills();
    if (name === "approvals") this.refreshApprovals();
    if (name === "chats") this.refreshTasks();
  }

  refreshAll() {
    this.refreshTasks();
    this.refreshApprovals();
  }

  markOpen(taskId) {
    this.openTaskId = taskId;
    for (const item of document.querySelectorAll("#task-list li")) {
      item.classList.toggle("open", item.dataset.taskId === taskId);
    }
  }

  // --- chats ---------------------------------------------------------------------------------

  // Newest chats first; while searching, the titles of the latest 500 that contain the words.
  async refreshTasks(more = false) {
    const query = $("task-search").value.trim().toLowerCase();
    try {
      const token = more ? this.nextTasks : "";
      const size = query ? 500 : 30;
      const page = await api("GET", `/v1/tasks?page_size=${size}&page_token=${encodeURIComponent(token)}`);
      if (query !== $("task-search").value.trim().toLowerCase()) return; // typed on meanwhile
      const list = $("task-list");
      if (!more) list.replaceChildren();
      const words = query.split(/\s+/).filter(Boolean);
      const found = page.tasks.filter((task) => words.every((word) => (task.title || "").toLowerCase().includes(word)));
      for (const task of found) list.append(this.taskItem(task));
      this.nextTasks = query ? "" : page.next_page_token;
      $("more-tasks").hidden = !this.nextTasks;
      $("task-none").hidden = list.childElementCount > 0 || !query;
    } catch (err) {
      this.onError(err);
    }
  }

  taskItem(task) {
    const item = el("li");
    item.dataset.taskId = task.id;
    item.classList.toggle("open", task.id === this.openTaskId);
    const open = el("button", "task");
    open.type = "button";
    open.title = task.title || "";
    open.append(el("span", "task-title", (task.title || "(untitled)").replace(/\s+/g, " ")));
    const meta = el("span", "task-meta");
    meta.append(el("span", `chip ${task.status}`, task.status.replace("_", " ")), el("span", "", when(task.update_time)));
    open.append(meta);
    open.addEventListener("click", () => this.onOpenTask(task.id));
    const actions = el("span", "task-actions");
    const remove = button("Delete", "delete link", async () => {
      // A second click confirms: a chat and its history are gone for good.
      if (!remove.dataset.armed) {
        remove.dataset.armed = "1";
        remove.textContent = "Delete?";
        setTimeout(() => {
          delete remove.dataset.armed;
          remove.textContent = "Delete";
        }, 4000);
        return;
      }
      try {
        await api("DELETE", `/v1/tasks/${encodeURIComponent(task.id)}`);
        item.remove();
        this.onDeleted(task.id);
      } catch (err) {
        this.onError(err);
      }
    });
    actions.append(button("Rename", "rename link", () => this.rename(item, open, task)), remove);
    item.append(open, actions);
    return item;
  }

  rename(item, open, task) {
    if (item.querySelector("form")) return;
    const form = el("form", "rename-form inline-form");
    const field = el("input");
    field.value = task.title || "";
    field.maxLength = 200;
    field.setAttribute("aria-label", "New title");
    const save = el("button", "", "Save");
    save.type = "submit";
    form.append(field, save);
    const close = () => {
      form.remove();
      open.hidden = false;
    };
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = field.value.trim();
      if (!title) {
        field.setCustomValidity("A title cannot be empty.");
        field.reportValidity();
        return;
      }
      try {
        const renamed = await api("PATCH", `/v1/tasks/${encodeURIComponent(task.id)}`, { title });
        task.title = renamed.title;
        open.querySelector(".task-title").textContent = renamed.title;
        open.title = renamed.title;
        close();
      } catch (err) {
        this.onError(err);
      }
    });
    field.addEventListener("input", () => field.setCustomValidity(""));
    open.hidden = true;
    item.prepend(form);
    field.focus();
    field.select();
  }

  // --- approvals ----------------------------------------------------------------------------

  // Every pending approval, exactly as GET /v1/approvals lists them (cancelling a task denies
  // its approval, so none here waits for nobody).
  async refreshApprovals() {
    if (document.hidden) return;
    try {
      const approvals = [];
      let token = "";
      do {
        const page = await api("GET", `/v1/approvals?state=pending&page_size=500&page_token=${encodeURIComponent(token)}`);
        approvals.push(...page.approvals);
        token = page.next_page_token;
      } while (token);
      const count = $("approval-count");
      count.textContent = String(approvals.length);
      count.hidden = approvals.length === 0;
      const list = $("approval-list");
      list.replaceChildren();
      if (!approvals.length) list.append(el("p", "empty", "Nothing is waiting for you."));
      for (const approval of approvals) list.append(this.approvalCard(approval));
    } catch (err) {
      if (err.status !== 401) $("approval-list").replaceChildren(el("p", "error-text", err.describe()));
    }
  }

  approvalCard(approval) {
    const card = el("div", "approval-card compact");
    card.dataset.approvalId = approval.id;
    card.append(el("div", "approval-title", approval.tool));
    card.append(el("pre", "data", JSON.stringify(approval.arguments, null, 2)));
    const outcome = el("div", "approval-outcome");
    const decide = async (path, body) => {
      try {
        await api("POST", `/v1/approvals/${encodeURIComponent(approval.id)}/${path}`, body);
        card.remove();
        this.refreshApprovals();
        this.onDecided(approval);
      } catch (err) {
        outcome.textContent = err.describe();
      }
    };
    const actions = el("div", "approval-actions");
    actions.append(
      button("Approve", "approve", () => decide("approve", { scope: "once", decided_by: "webchat" })),
      button("For this task", "approve-task secondary", () => decide("approve", { scope: "task", decided_by: "webchat" })),
      button("Deny", "deny danger", () => decide("deny", { decided_by: "webchat" })),
      ...(approval.task_id ? [button("Open chat", "link", () => this.onOpenTask(approval.task_id))] : []),
    );
    if (approval.pattern) {
      // A run_command approval can also allow its pattern (spelled out here) for the task.
      const pattern = button("For this pattern", "approve-pattern secondary", () => decide("approve", { scope: "task_pattern" }));
      pattern.title = `Allow for the rest of this task: ${approval.pattern}`;
      actions.insertBefore(pattern, actions.children[2]);
      card.append(el("div", "approval-pattern", `Pattern: ${approval.pattern}`));
    }
    card.append(actions, outcome);
    return card;
  }

  // --- skills ---------------------------------------------------------------------------------

  async refreshSkills() {
    const skills = $("skill-list");
    const proposals = $("proposal-list");
    try {
      const page = await api("GET", "/v1/skills?page_size=200");
      skills.replaceChildren();
      if (!page.skills.length) skills.append(el("p", "empty", "No skills yet."));
      for (const skill of page.skills) skills.append(this.skillItem(skill));
      for (const problem of page.invalid_skills) {
        skills.append(el("p", "error-text", `${problem.source}: ${problem.field}: ${problem.message}`));
      }
    } catch (err) {
      skills.replaceChildren(el("p", "error-text", err.describe()));
    }
    try {
      const page = await api("GET", "/v1/skill-proposals?page_size=100");
      proposals.replaceChildren();
      if (!page.proposals.length) proposals.append(el("p", "empty", "No proposals."));
      for (const proposal of page.proposals) proposals.append(this.proposalItem(proposal));
    } catch (err) {
      proposals.replaceChildren(el("p", "error-text", err.describe()));
    }
  }

  skillItem(skill) {
    const details = el("details", "skill");
    details.dataset.skill = skill.name;
    const summary = el("summary");
    summary.append(el("strong", "", skill.name), el("span", "muted", ` — ${skill.description}`));
    details.append(summary);
    details.addEventListener("toggle", async () => {
      if (!details.open || details.dataset.loaded) return;
      details.dataset.loaded = "1";
      try {
        const full = await api("GET", `/v1/skills/${encodeURIComponent(skill.name)}`);
        const body = el("div", "markdown");
        body.append(renderMarkdown(full.body));
        if (full.allowed_tools.length) details.append(el("div", "muted", `tools: ${full.allowed_tools.join(", ")}`));
        details.append(body);
      } catch (err) {
        details.append(el("p", "error-text", err.describe()));
      }
    });
    return details;
  }

  proposalItem(proposal) {
    const card = el("div", `proposal ${proposal.state}`);
    card.dataset.proposalId = proposal.id;
    const head = el("div", "proposal-head");
    head.append(el("strong", "", proposal.name || proposal.id), el("span", `chip ${proposal.state}`, proposal.state));
    card.append(head);
    if (proposal.rationale) card.append(el("p", "muted", proposal.rationale));
    for (const problem of proposal.problems) card.append(el("p", "error-text", `${problem.field}: ${problem.message}`));
    const source = el("details");
    source.append(el("summary", "", "SKILL.md"), el("pre", "data", proposal.skill_md));
    card.append(source);
    if (proposal.state === "pending") {
      const outcome = el("div", "approval-outcome");
      const decide = async (path, body) => {
        try {
          await api("POST", `/v1/skill-proposals/${encodeURIComponent(proposal.id)}/${path}`, body);
          this.refreshSkills();
        } catch (err) {
          outcome.textContent = err.describe();
        }
      };
      const actions = el("div", "approval-actions");
      actions.append(
        button("Promote", "promote", () => decide("promote", { decided_by: "webchat" })),
        button("Reject", "reject danger", () => decide("reject", { decided_by: "webchat" })),
      );
      card.append(actions, outcome);
    }
    return card;
  }

  // --- memory ---------------------------------------------------------------------------------

  async searchMemory() {
    const results = $("memory-results");
    const text = $("memory-query").value.trim();
    if (!text) return;
    results.replaceChildren(el("p", "muted", "Searching…"));
    try {
      const found = await api("POST", "/v1/memories/search", { text, top_k: 10 });
      results.replaceChildren();
      if (!found.results.length) results.append(el("p", "empty", "Nothing found."));
      for (const { memory, score } of found.results) {
        const item = el("div", "memory");
        item.append(el("div", "memory-text", memory.text));
        const where = { task: "one conversation", long_term: "long-term", project: `project ${memory.project}` };
        const meta = el("div", "muted", `score ${score.toFixed(2)} · ${where[memory.scope] || memory.scope}${memory.kind ? ` · ${memory.kind}` : ""}`);
        // A conversation's memory is recalled in every conversation only once a person promotes it.
        if (memory.scope === "task") {
          const promote = button("Promote", "link", async () => {
            try {
              await api("POST", `/v1/memories/${encodeURIComponent(memory.id)}/promote`);
              promote.replaceWith(el("span", "", " kept long-term "));
            } catch (err) {
              meta.append(el("span", "error-text", ` ${err.describe()}`));
            }
          });
          meta.append(promote, " ");
        }
        meta.append(
          button("Forget", "link", async () => {
            try {
              await api("DELETE", `/v1/memories/${encodeURIComponent(memory.id)}`);
              item.remove();
            } catch (err) {
              meta.append(el("span", "error-text", ` ${err.describe()}`));
            }
          }),
        );
        item.append(meta);
        results.append(item);
      }
    } catch (err) {
      const off = err.code === "FAILED_PRECONDITION";
      results.replaceChildren(el("p", "error-text", off ? `Memory is off: ${err.message}` : err.describe()));
    }
  }

  async remember() {
    const text = $("memory-text").value.trim();
    if (!text) return;
    const results = $("memory-results");
    try {
      await api("POST", "/v1/memories", { text, kind: "note" });
      $("memory-text").value = "";
      results.replaceChildren(el("p", "muted", "Remembered long-term."));
    } catch (err) {
      results.replaceChildren(el("p", "error-text", err.describe()));
    }
  }
}
