// Markdown for model, skill and memory text: parsed by `marked` (GitHub-flavoured: tables, fenced
// code), code highlighted by highlight.js, and the result passed through DOMPurify, which returns
// DOM nodes (never an HTML string the page would insert). Raw HTML in the text is shown as text,
// links keep only http(s) and mailto URLs, and images are not loaded. The libraries are vendored
// under static/vendor/ by scripts/vendor_static.sh.

import { Marked } from "./vendor/marked/marked.esm.js";
import hljs from "./vendor/highlight/core.min.js";
import bash from "./vendor/highlight/languages/bash.min.js";
import c from "./vendor/highlight/languages/c.min.js";
import cpp from "./vendor/highlight/languages/cpp.min.js";
import css from "./vendor/highlight/languages/css.min.js";
import diff from "./vendor/highlight/languages/diff.min.js";
import go from "./vendor/highlight/languages/go.min.js";
import ini from "./vendor/highlight/languages/ini.min.js";
import java from "./vendor/highlight/languages/java.min.js";
import javascript from "./vendor/highlight/languages/javascript.min.js";
import json from "./vendor/highlight/languages/json.min.js";
import markdown from "./vendor/highlight/languages/markdown.min.js";
import python from "./vendor/highlight/languages/python.min.js";
import rust from "./vendor/highlight/languages/rust.min.js";
import shell from "./vendor/highlight/languages/shell.min.js";
import sql from "./vendor/highlight/languages/sql.min.js";
import typescript from "./vendor/highlight/languages/typescript.min.js";
import xml from "./vendor/highlight/languages/xml.min.js";
import yaml from "./vendor/highlight/languages/yaml.min.js";

const LANGUAGES = { bash, c, cpp, css, diff, go, ini, java, javascript, json, markdown, python, rust, shell, sql, typescript, xml, yaml };
for (const [name, grammar] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, grammar);

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escape = (text) => String(text).replace(/[&<>"']/g, (char) => ESCAPES[char]);

function safeUrl(href) {
  try {
    const url = new URL(href, window.location.href);
    return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  renderer: {
    // Raw HTML in model output is text to show, not markup.
    html({ text }) {
      return escape(text);
    },
    link({ href, title, tokens }) {
      const label = this.parser.parseInline(tokens);
      const url = safeUrl(href);
      if (!url) return `${label} (${escape(href)})`;
      const titled = title ? ` title="${escape(title)}"` : "";
      return `<a href="${escape(url)}"${titled} rel="noopener noreferrer nofollow" target="_blank">${label}</a>`;
    },
    image({ text, href }) {
      return escape(text || href);
    },
    code({ text, lang }) {
      const language = (lang || "").trim().split(/\s+/)[0].toLowerCase();
      const known = language && hljs.getLanguage(language);
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escape(text);
      const label = language ? ` data-language="${escape(language)}"` : "";
      return `<pre${label}><code class="hljs${known ? ` language-${escape(language)}` : ""}">${body}</code></pre>`;
    },
  },
});

const PURIFY = {
  RETURN_DOM_FRAGMENT: true,
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "svg", "math", "iframe"],
  FORBID_ATTR: ["style"],
  ADD_ATTR: ["target"],
};

function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
  const area = document.createElement("textarea");
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  return Promise.resolve();
}

export function copyButton(label, text, className = "copy") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `${className} secondary small`;
  button.textContent = label;
  button.addEventListener("click", async () => {
    try {
      await copyText(typeof text === "function" ? text() : text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

// Frames each code block with its language and a copy button, and lets wide tables scroll.
function decorate(fragment) {
  for (const pre of fragment.querySelectorAll("pre")) {
    const frame = document.createElement("div");
    frame.className = "code-block";
    const head = document.createElement("div");
    head.className = "code-head";
    const language = document.createElement("span");
    language.textContent = pre.dataset.language || "text";
    const code = pre.querySelector("code");
    head.append(language, copyButton("Copy", () => (code || pre).textContent));
    pre.replaceWith(frame);
    frame.append(head, pre);
  }
  for (const table of fragment.querySelectorAll("table")) {
    const wrap = document.createElement("div");
    wrap.className = "table-wrap";
    table.replaceWith(wrap);
    wrap.append(table);
  }
  return fragment;
}

export function renderMarkdown(text) {
  const html = marked.parse(String(text ?? ""), { async: false });
  return decorate(window.DOMPurify.sanitize(html, PURIFY));
}
