// Small DOM helpers shared by the views.

import { ApiError, readyModels } from "./api.js";

/** A new element: `el("li", {class: "x", onclick: f}, child, "text")`. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== undefined && c !== null));
  return node;
}

/** Show `message` in the page's notice bar (empty: hide it). */
export function notify(message) {
  const notice = document.getElementById("notice");
  notice.textContent = message;
  notice.hidden = !message;
}

/** Report an error of a call: its message in the notice bar (focus the token field on 401). */
export function report(error) {
  notify(error.message);
  if (error instanceof ApiError && error.status === 401) document.getElementById("token").focus();
}

/** Fill a model picker with the ready models of its `data-kind`, keeping the current choice if still there. */
export async function fillModels(select) {
  const names = await readyModels(select.dataset.kind);
  const chosen = select.value;
  select.replaceChildren(...names.map((name) => el("option", { value: name }, name)));
  if (names.includes(chosen)) select.value = chosen;
  select.disabled = names.length === 0;
  if (names.length === 0) select.append(el("option", {}, "no model ready"));
  return names;
}

/**
 * Wire a view's form: submitting it (or Ctrl+Enter in `input`) runs `run`; the view's `show()`
 * refreshes its model picker `models`. Returns the view object the app calls.
 */
export function formView(form, input, models, run) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  onCtrlEnter(input, () => form.requestSubmit());
  return {
    async show() {
      try {
        await fillModels(models);
      } catch (error) {
        report(error);
      }
    },
  };
}

/** Run `action` when Ctrl+Enter (or Cmd+Enter) is pressed in `field`. */
export function onCtrlEnter(field, action) {
  field.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      action();
    }
  });
}

export function formatMs(ms) {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** A short label for an enum name: "MODEL_STATE_READY" -> "ready". */
export function enumLabel(name, prefix) {
  return String(name ?? "").replace(prefix, "").replaceAll("_", " ").toLowerCase();
}
