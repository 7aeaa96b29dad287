// The message box: Enter sends, Shift+Enter breaks the line; an empty or too long message gets a
// clear hint and is never sent; `/name` at the start picks a skill (completed from GET /v1/skills)
// and sends it as the request's "skill". The text stays in the box until the send is accepted.

import { api } from "./api.js";

export const MAX_MESSAGE_CHARS = 32000; // the gateway's limit on POST /v1/chat "message"
const SKILL = /^\/([a-z0-9-]*)(?:\s+([\s\S]*))?$/;

export class Composer {
  constructor({ form, input, hint, completions, onSend }) {
    this.form = form;
    this.input = input;
    this.hint = hint;
    this.completions = completions;
    this.onSend = onSend; // ({ text, skill }) => Promise<boolean>: true once the send was accepted
    this.skills = null; // names and descriptions, loaded on the first "/"
    this.choice = 0;
    this.busy = false;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    input.addEventListener("keydown", (event) => this.keydown(event));
    input.addEventListener("input", () => {
      this.say("");
      this.complete();
    });
  }

  say(text, kind = "error") {
    this.hint.textContent = text;
    this.hint.dataset.kind = text ? kind : "";
  }

  keydown(event) {
    const open = !this.completions.hidden;
    if (open && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      const count = this.completions.children.length;
      this.choice = (this.choice + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
      this.highlight();
    } else if (open && (event.key === "Tab" || (event.key === "Enter" && !event.shiftKey))) {
      event.preventDefault();
      this.pick(this.completions.children[this.choice]?.dataset.skill);
    } else if (open && event.key === "Escape") {
      this.completions.hidden = true;
    } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.form.requestSubmit();
    }
  }

  // What the box holds: the message, and the skill named by a leading "/name".
  parse() {
    const raw = this.input.value;
    const match = raw.trimStart().match(SKILL);
    if (!match) return { text: raw.trim(), skill: "" };
    return { text: (match[2] || "").trim(), skill: match[1] };
  }

  async submit() {
    if (this.busy) return;
    const { text, skill } = this.parse();
    if (skill) await this.loadSkills();
    if (skill && this.skills && !this.skills.some((known) => known.name === skill)) {
      this.say(`There is no skill named "${skill}". Type / to see the skills.`);
      return;
    }
    if (!text) {
      this.say(skill ? `Add your message after /${skill}.` : "Type a message first.");
      this.input.focus();
      return;
    }
    if (text.length > MAX_MESSAGE_CHARS) {
      this.say(`This message is ${text.length.toLocaleString()} characters; the limit is ${MAX_MESSAGE_CHARS.toLocaleString()}. Shorten it and send again.`);
      return;
    }
    this.say("");
    this.completions.hidden = true;
    this.busy = true;
    const sent = this.input.value;
    try {
      const accepted = await this.onSend({ text, skill });
      // Kept when the send failed; cleared once accepted unless the person typed something new.
      if (accepted && this.input.value === sent) this.input.value = "";
    } finally {
      this.busy = false;
    }
  }

  async loadSkills() {
    if (this.skills) return this.skills;
    try {
      const page = await api("GET", "/v1/skills?page_size=200");
      this.skills = page.skills.map(({ name, description }) => ({ name, description }));
    } catch {
      this.skills = null; // try again on the next "/"
      return [];
    }
    return this.skills;
  }

  async complete() {
    const match = this.input.value.match(/^\/([a-z0-9-]*)$/);
    if (!match) {
      this.completions.hidden = true;
      return;
    }
    const skills = (await this.loadSkills()).filter((skill) => skill.name.startsWith(match[1]));
    if (!this.input.value.match(/^\/([a-z0-9-]*)$/)) return; // typed on while loading
    this.completions.replaceChildren();
    for (const skill of skills) {
      const item = document.createElement("li");
      item.role = "option";
      item.dataset.skill = skill.name;
      const name = document.createElement("strong");
      name.textContent = `/${skill.name}`;
      const about = document.createElement("span");
      about.textContent = ` ${skill.description}`;
      item.append(name, about);
      item.addEventListener("mousedown", (event) => {
        event.preventDefault(); // keep the focus in the box
        this.pick(skill.name);
      });
      this.completions.append(item);
    }
    this.choice = 0;
    this.highlight();
    this.completions.hidden = skills.length === 0;
    if (!skills.length) this.say(`No skill starts with "${match[1]}".`, "info");
  }

  highlight() {
    [...this.completions.children].forEach((item, index) => item.setAttribute("aria-selected", String(index === this.choice)));
  }

  pick(name) {
    if (!name) return;
    this.input.value = `/${name} `;
    this.completions.hidden = true;
    this.input.focus();
  }
}
