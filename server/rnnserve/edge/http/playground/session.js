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

/** One Session. Flow control: at most one batch of events is in flight; keystrokes made meanwhile are
 * sent together when its answer arrives, so a model slower than the typist never falls behind by
 * more than one answer. `onSuggestions(response, latencyMs, current)` gets each answer: latency from
 * the first keystroke it answers; `current` false when newer keystrokes are already on their way.
 * `onEnd(message)` is called once when the session ends ("" when it just closed). */
export class Session {
  constructor({ model, options, text, onSuggestions, onEnd }) {
    this.onSuggestions = onSuggestions;
    this.onEnd = onEnd;
    this.target = text; // the editor's text before the cursor
    this.document = null; // what the server holds once the events sent so far are applied
    this.pendingSince = performance.now(); // first keystroke not sent yet
    this.inFlight = null; // {index, started} of the batch awaiting its answer
    this.nextIndex = 0;
    this.socket = openSocket("/api/v1/session");
    this.socket.onopen = () => this.flush({ open: { model, options, text: this.target } });
    this.socket.onmessage = (message) => this.receive(JSON.parse(message.data));
    this.socket.onclose = (event) => this.end(event);
  }

  /** Bring the server's document to `text` (now, or when the batch in flight is answered). */
  sync(text) {
    if (text === this.target) return;
    this.target = text;
    this.pendingSince ??= performance.now();
    if (this.document !== null) this.flush();
  }

  flush(open = null) {
    if (this.inFlight || this.socket.readyState !== WebSocket.OPEN) return;
    const events = open ? [open] : edits(this.document, this.target);
    if (events.length === 0) return;
    for (const event of events) this.socket.send(JSON.stringify(event));
    this.document = this.target;
    this.nextIndex += events.length;
    this.inFlight = { index: this.nextIndex - 1, started: this.pendingSince };
    this.pendingSince = null;
  }

  receive(response) {
    if (response.error) {
      this.error = response.error.message;
      return; // the close frame follows
    }
    if (Number(response.event_index ?? 0) !== this.inFlight?.index) return; // the first half of a delete + append
    const latency = performance.now() - this.inFlight.started;
    this.inFlight = null;
    const current = this.target === this.document;
    this.onSuggestions(response, latency, current);
    if (!current) this.flush();
  }

  end(event) {
    if (this.closing) return;
    this.closing = true;
    let message = this.error;
    if (!message && this.document === null) message = "could not open a session (is the server up, and the token right?)";
    if (!message && event.code !== 1000) message = `the session closed (${event.code})`;
    this.onEnd(message ?? "");
  }

  close() {
    this.closing = true;
    this.socket.close(1000);
  }
}
