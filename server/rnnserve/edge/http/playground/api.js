// The HTTP API as the playground calls it: JSON over fetch, server-sent events, the Session WebSocket.
// The bearer token (if the server needs one) lives in sessionStorage: this tab only, gone when it closes.
// fetch sends it as an Authorization header; a WebSocket cannot carry headers from a browser, so it
// travels as a subprotocol, "rnnserve.bearer.<base64url>" beside "rnnserve.v1", never in the URL.

const TOKEN_KEY = "rnnserve.token";
export const SESSION_SUBPROTOCOL = "rnnserve.v1";
const BEARER_PREFIX = "rnnserve.bearer.";

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An HTTP error answer: status and the API's error message. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function headers(extra = {}) {
  const all = { "content-type": "application/json", ...extra };
  if (token()) all.authorization = `Bearer ${token()}`;
  return all;
}

async function fail(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body.error?.message) message = body.error.message;
  } catch {
    // not JSON: keep the status line
  }
  if (response.status === 401) message = `${message} (enter the server's token above)`;
  throw new ApiError(response.status, message);
}

export async function getJson(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) await fail(response);
  return response.json();
}

export async function postJson(path, body) {
  const response = await fetch(path, { method: "POST", headers: headers(), body: JSON.stringify(body) });
  if (!response.ok) await fail(response);
  return response.json();
}

/** POST `body` and yield each event of the server-sent event stream that answers, until `data: [DONE]`.
 * Aborting `signal` closes the connection, which cancels the work on the server. */
export async function* postStream(path, body, signal) {
  const response = await fetch(path, {
    method: "POST", headers: headers({ accept: "text/event-stream" }), body: JSON.stringify(body), signal,
  });
  if (!response.ok) await fail(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, end).split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart()).join("\n");
      buffer = buffer.slice(end + 2);
      if (!data) continue;
      if (data === "[DONE]") return;
      const event = JSON.parse(data);
      if (event.error) throw new ApiError(0, event.error.message);
      yield event;
    }
  }
}

function base64url(text) {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** A WebSocket to `path` on this server, offering the session subprotocol (and the token, if any). */
export function openSocket(path) {
  const url = new URL(path, location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  const protocols = [SESSION_SUBPROTOCOL];
  if (token()) protocols.push(BEARER_PREFIX + base64url(token()));
  return new WebSocket(url, protocols);
}

/** The ready models of one kind (a ModelKind enum name), by name. */
export async function readyModels(kind) {
  const { models = [] } = await getJson(`/api/v1/models?kind=${encodeURIComponent(kind)}`);
  return models.filter((m) => m.state === "MODEL_STATE_READY").map((m) => m.name);
}
