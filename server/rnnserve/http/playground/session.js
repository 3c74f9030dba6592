// The assistant Session over the WebSocket, kept in step with an editor.
// The server's document is the text before the cursor. The Session's events (proto/rnnserve/v1/
// assistant.proto: open, append, delete = backspace at the end, reset) only edit the end of it, so
// any change (typing, backspace, a paste or cut in the middle, a cursor move) is sent as: delete
// the characters after the longest common prefix, then append the new ones (reset when nothing
// is kept). Characters are counted as code points, as the server counts them.

import { openSocket } from "./api.js";

/** The Session events that turn the document `from` into `to`. */
export function edits(from, to) {
  const a = Array.from(from);
  const b = Array.from(to);
  let kept = 0;
  while (kept < a.length && kept < b.length && a[kept] === b[kept]) kept += 1;
  const events = [];
  if (kept === 0 && a.length > 0) events.push({ reset: {} });
  else if (a.length > kept) events.push({ delete: { chars: a.length - kept } });
  if (b.length > kept) events.push({ append: { text: b.slice(kept).join("") } });
  return events;
}

/** One Session: `onSuggestions(response, latencyMs)` gets the answer to the latest edit (answers to
 * edits already superseded are dropped); `onEnd(message)` is called once when it ends. */
export class Session {
  constructor({ model, options, text, onSuggestions, onEnd }) {
    this.onSuggestions = onSuggestions;
    this.onEnd = onEnd;
    this.document = text; // what the server holds once every event sent so far is applied
    this.opened = false;
    this.nextIndex = 0;
    this.started = new Map(); // event index answering a keystroke -> when the keystroke was sent
    this.socket = openSocket("/api/v1/session");
    this.socket.onopen = () => {
      this.opened = true;
      this.send([{ open: { model, options, text: this.document } }]);
    };
    this.socket.onmessage = (message) => this.receive(JSON.parse(message.data));
    this.socket.onclose = (event) => this.end(event);
  }

  /** Bring the server's document to `text`; true if there was anything to send. */
  sync(text) {
    if (text === this.document) return false;
    const events = edits(this.document, text);
    this.document = text;
    if (this.opened) this.send(events);
    return true; // before the socket opens, the open message carries the latest text
  }

  send(events) {
    const now = performance.now();
    for (const event of events) this.socket.send(JSON.stringify(event));
    this.nextIndex += events.length;
    this.started.set(this.nextIndex - 1, now);
  }

  receive(response) {
    if (response.error) {
      this.error = response.error.message;
      return; // the close frame follows
    }
    const index = Number(response.event_index ?? 0);
    const started = this.started.get(index);
    if (started === undefined) return; // the first half of a delete + append
    this.started.delete(index);
    if (index === this.nextIndex - 1) this.onSuggestions(response, performance.now() - started);
  }

  end(event) {
    if (this.closing) return;
    this.closing = true;
    let message = this.error;
    if (!message && !this.opened) message = "could not open a session (is the server up, and the token right?)";
    if (!message && event.code !== 1000) message = `the session closed (${event.code})`;
    this.onEnd(message ?? "");
  }

  close() {
    this.closing = true;
    this.socket.close(1000);
  }
}
