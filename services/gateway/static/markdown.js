// A small Markdown renderer that cannot run anything.
//
// It builds DOM nodes with createElement and textContent only (text never reaches the HTML
// parser), so any HTML in model or tool output ("<script>", "<img onerror=…>") is shown as the
// text it is. Links are kept only for http(s) and mailto URLs. Supported: paragraphs, # headings, - / 1. lists, > quotes,
// ``` fenced code, `code`, **bold**, *italic*, [text](url) and bare http(s) URLs.

const SAFE_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const INLINE =
  /(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|\*(?=[^\s*])([^*]*?[^\s*])\*|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]*[^\s<>().,;:!?'"])/g;

function el(tag, className) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  return node;
}

export function safeLink(text, url) {
  let parsed;
  try {
    parsed = new URL(url, window.location.href);
  } catch {
    return document.createTextNode(text === url ? url : `[${text}](${url})`);
  }
  if (!SAFE_PROTOCOLS.has(parsed.protocol)) {
    return document.createTextNode(text === url ? url : `[${text}](${url})`);
  }
  const link = el("a");
  link.href = parsed.href;
  link.textContent = text;
  link.rel = "noopener noreferrer nofollow";
  link.target = "_blank";
  return link;
}

function appendInline(parent, text) {
  let last = 0;
  for (const match of text.matchAll(INLINE)) {
    if (match.index > last) parent.append(document.createTextNode(text.slice(last, match.index)));
    const [, ticks, code, bold, italic, linkText, linkUrl, bare] = match;
    if (ticks) {
      const node = el("code");
      node.textContent = code;
      parent.append(node);
    } else if (bold !== undefined) {
      const node = el("strong");
      appendInline(node, bold);
      parent.append(node);
    } else if (italic !== undefined) {
      const node = el("em");
      appendInline(node, italic);
      parent.append(node);
    } else if (linkText !== undefined) {
      parent.append(safeLink(linkText, linkUrl));
    } else if (bare !== undefined) {
      parent.append(safeLink(bare, bare));
    }
    last = match.index + match[0].length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

const FENCE = /^\s*(```|~~~)\s*([\w+-]*)\s*$/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const NUMBERED = /^\s*(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;

// Returns a DocumentFragment for `text` (a string from the model, a tool or a skill).
export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  let index = 0;
  while (index < lines.length) {
    const line = lines[index];
    const fence = line.match(FENCE);
    if (fence) {
      const body = [];
      index += 1;
      while (index < lines.length && !lines[index].trim().startsWith(fence[1])) body.push(lines[index++]);
      index += 1; // the closing fence (or the end)
      const pre = el("pre");
      const code = el("code");
      if (fence[2]) code.dataset.language = fence[2];
      code.textContent = body.join("\n");
      pre.append(code);
      fragment.append(pre);
      continue;
    }
    if (!line.trim()) {
      index += 1;
      continue;
    }
    const heading = line.match(HEADING);
    if (heading) {
      const node = el(`h${Math.min(heading[1].length + 2, 6)}`);
      appendInline(node, heading[2]);
      fragment.append(node);
      index += 1;
      continue;
    }
    if (BULLET.test(line) || NUMBERED.test(line)) {
      const ordered = !BULLET.test(line);
      const list = el(ordered ? "ol" : "ul");
      if (ordered) list.start = Number(line.match(NUMBERED)[1]);
      while (index < lines.length) {
        const item = lines[index].match(ordered ? NUMBERED : BULLET);
        if (!item) break;
        const li = el("li");
        appendInline(li, ordered ? item[2] : item[1]);
        list.append(li);
        index += 1;
      }
      fragment.append(list);
      continue;
    }
    if (QUOTE.test(line)) {
      const quote = el("blockquote");
      const body = [];
      while (index < lines.length && QUOTE.test(lines[index])) body.push(lines[index++].match(QUOTE)[1]);
      quote.append(renderMarkdown(body.join("\n")));
      fragment.append(quote);
      continue;
    }
    const paragraph = [];
    while (
      index < lines.length &&
      lines[index].trim() &&
      !FENCE.test(lines[index]) &&
      !HEADING.test(lines[index]) &&
      !BULLET.test(lines[index]) &&
      !NUMBERED.test(lines[index]) &&
      !QUOTE.test(lines[index])
    ) {
      paragraph.push(lines[index++]);
    }
    const node = el("p");
    appendInline(node, paragraph.join("\n"));
    fragment.append(node);
  }
  return fragment;
}
