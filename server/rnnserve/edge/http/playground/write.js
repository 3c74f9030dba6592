// The Write view: a text area with live suggestions from an assistant Session, as ghost text at the
// cursor and a short list; Tab accepts, every edit and cursor move keeps the session in step.

import { Session } from "./session.js";
import { el, enumLabel, fillModels, formatMs, median, notify, report } from "./ui.js";

const LATENCIES_KEPT = 500;

const percent = (p) => (p < 0.005 ? "<1%" : `${Math.round(p * 100)}%`);

export function initWrite() {
  const model = document.getElementById("write-model");
  const text = document.getElementById("write-text");
  const mirror = document.getElementById("write-mirror");
  const list = document.getElementById("write-suggestions");
  const status = document.getElementById("write-status");
  const kinds = [...document.querySelectorAll("#view-write input[name=kind]")];
  let session = null;
  let suggestions = [];
  let chosen = 0;
  let stale = false; // the text changed since the suggestions shown were made
  let dismissed = false; // Esc: hidden until the next edit
  let composing = false; // an input method is composing a character
  let acceptWhenFresh = false; // Tab pressed while the suggestions for the latest text were on their way
  let announced = "";
  const latencies = [];

  const before = () => text.value.slice(0, text.selectionStart);
  const showing = () => suggestions.length > 0 && !stale && !dismissed;

  function connect() {
    session?.close();
    suggestions = [];
    latencies.length = 0;
    showLatency();
    render();
    if (model.disabled || !model.value) return;
    status.textContent = "connecting…";
    const options = { kinds: kinds.filter((k) => k.checked).map((k) => k.value), max_suggestions: 3 };
    const current = new Session({
      model: model.value, options, text: before(),
      onSuggestions: (response, latency, upToDate) => {
        if (session !== current) return;
        status.textContent = `session ${response.session_id.slice(0, 8)} · ${response.document_chars ?? 0} chars`;
        if (Number(response.event_index ?? 0) > 0) recordLatency(latency);
        if (!upToDate) return; // newer keystrokes are on their way: these suggestions are already stale
        suggestions = response.suggestions ?? [];
        chosen = 0;
        stale = false;
        dismissed = false;
        if (acceptWhenFresh) {
          acceptWhenFresh = false;
          accept(0);
        }
        render();
      },
      onEnd: (message) => {
        if (session !== current) return;
        session = null;
        status.textContent = "not connected: typing reconnects";
        suggestions = [];
        render();
        if (message) notify(message);
      },
    });
    session = current;
  }

  function recordLatency(ms) {
    latencies.push(ms);
    if (latencies.length > LATENCIES_KEPT) latencies.shift();
    showLatency();
  }

  function showLatency() {
    const last = latencies.at(-1);
    document.getElementById("latency-last").textContent = last === undefined ? "–" : formatMs(last);
    document.getElementById("latency-median").textContent = last === undefined ? "–" : formatMs(median(latencies));
    document.getElementById("latency-count").textContent = String(latencies.length);
  }

  function sync() {
    if (composing) return;
    if (!session) {
      connect();
      return;
    }
    if (before() !== session.target) {
      session.sync(before());
      stale = true;
      dismissed = false;
      acceptWhenFresh = false;
    }
    render();
  }

  function accept(index) {
    const suggestion = suggestions[index];
    if (!suggestion) return;
    text.setRangeText(suggestion.insert_text, text.selectionStart, text.selectionEnd, "end");
    text.focus();
    sync();
  }

  function render() {
    const at = text.selectionStart;
    const value = text.value;
    const atLineEnd = at === text.selectionEnd && (at === value.length || value[at] === "\n");
    const ghost = showing() && atLineEnd ? suggestions[chosen].insert_text : "";
    // the mirror lays out the same text under the textarea; only the ghost is visible
    mirror.replaceChildren(value.slice(0, at), el("span", { class: "ghost" }, ghost), `${value.slice(at)} `);
    mirror.scrollTop = text.scrollTop;
    const top = showing() ? suggestions[chosen].text : "";
    if (top !== announced) { // for screen readers: the highlighted suggestion, not the whole list each time
      announced = top;
      document.getElementById("write-announce").textContent = top ? `Suggestion: ${top}` : "";
    }
    list.classList.toggle("stale", stale);
    list.replaceChildren(...(dismissed ? [] : suggestions).map((s, i) => el("li", {},
      el("button", {
        type: "button", tabindex: "-1", "aria-current": i === chosen && !stale ? "true" : null,
        onmousedown: (event) => event.preventDefault(), // keep the cursor in the text
        onclick: () => accept(i),
      },
      el("span", { class: "text" }, s.text),
      el("span", { class: "kind" }, enumLabel(s.kind, "SUGGESTION_KIND_")),
      el("span", { class: "prob" }, percent(s.probability ?? 0))))));
  }

  text.addEventListener("keydown", (event) => {
    const plainTab = event.key === "Tab" && !event.shiftKey && !event.altKey && !event.ctrlKey && !event.metaKey;
    if (plainTab && stale && !dismissed && session && suggestions.length > 0) { // ahead of the fresh suggestions
      event.preventDefault();
      acceptWhenFresh = true;
      return;
    }
    if (!showing() || event.ctrlKey || event.metaKey) return;
    if (event.key === "Tab" && !event.shiftKey && !event.altKey) {
      event.preventDefault();
      accept(chosen);
    } else if (event.key === "Escape") {
      event.preventDefault();
      dismissed = true;
      render();
    } else if (event.altKey && (event.key === "ArrowDown" || event.key === "ArrowUp")) {
      event.preventDefault();
      chosen = (chosen + (event.key === "ArrowDown" ? 1 : suggestions.length - 1)) % suggestions.length;
      render();
    }
  });
  text.addEventListener("input", sync);
  for (const name of ["keyup", "click", "select"]) text.addEventListener(name, sync); // cursor moves
  text.addEventListener("compositionstart", () => { composing = true; });
  text.addEventListener("compositionend", () => { composing = false; sync(); });
  text.addEventListener("scroll", () => { mirror.scrollTop = text.scrollTop; });
  model.addEventListener("change", connect);
  for (const kind of kinds) kind.addEventListener("change", connect);

  return {
    async show() {
      try {
        await fillModels(model);
      } catch (error) {
        report(error);
        return;
      }
      if (!session) connect();
      text.focus();
    },
    hide() { // the server keeps a session's state: release it while the view is away
      session?.close();
      session = null;
      status.textContent = "not connected";
    },
  };
}
