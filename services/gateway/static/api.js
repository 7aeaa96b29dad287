// Talking to the gateway: JSON calls and Server-Sent Events read from fetch() (EventSource cannot
// POST). Same-origin only; the WebChat session cookie (after logging in) is sent by the browser.
// Every call that changes something says Content-Type: application/json, body or not: the gateway
// refuses any other (that is what keeps other sites' forms out).

function jsonHeaders(method, body) {
  return method === "GET" && body === undefined ? {} : { "Content-Type": "application/json" };
}

export class ApiError extends Error {
  constructor(status, code, message, service) {
    super(message);
    this.status = status;
    this.code = code;
    this.service = service || "";
  }

  describe() {
    const where = this.service ? ` (${this.service})` : "";
    return `${this.status} ${this.code}${where}: ${this.message}`;
  }
}

let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: described by the status alone
  }
  const error = body && body.error ? body.error : {};
  if (response.status === 401) onUnauthorized();
  return new ApiError(response.status, error.code || "HTTP_ERROR", error.message || response.statusText, error.service);
}

export async function api(method, path, body, { signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      credentials: "same-origin",
      headers: jsonHeaders(method, body),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "NETWORK", `could not reach the DuckLM gateway (${err.message})`);
  }
  if (!response.ok) throw await failure(response);
  return response.status === 204 ? null : response.json();
}

// Yields {event, data} for each Server-Sent Event of a streaming call, until the stream ends.
export async function* stream(method, path, body, { signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      credentials: "same-origin",
      headers: { Accept: "text/event-stream", ...jsonHeaders(method, body) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") return;
    throw new ApiError(0, "NETWORK", `could not reach the DuckLM gateway (${err.message})`);
  }
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue; // a keep-alive comment
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") event = text;
          else if (field === "data") data.push(text);
        }
        if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
      }
    }
  } catch (err) {
    if (err.name === "AbortError") return;
    throw new ApiError(0, "NETWORK", `the event stream broke off (${err.message})`);
  } finally {
    // Closing the connection tells the gateway to stop the stream it holds for us.
    reader.cancel().catch(() => {});
  }
}
