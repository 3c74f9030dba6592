// The Models view: every model the server knows, its state (and why it failed), model card and counters.

import { getJson } from "./api.js";
import { el, enumLabel, notify, report } from "./ui.js";

const REFRESH_MS = 2000;
const COUNTERS = [
  ["requests_total", "requests"], ["tokens_total", "tokens"], ["steps_total", "steps"],
  ["queue_depth", "queued"], ["active_sequences", "active"], ["rejected_total", "rejected"],
  ["mean_batch_size", "mean batch"], ["lent_steps_total", "lent steps"], ["mean_lent_rows", "mean lent rows"],
];

const number = (value) => (typeof value === "number" && !Number.isInteger(value)
  ? value.toFixed(2) : Number(value ?? 0).toLocaleString("en"));

function pairs(entries, layout = "pairs") {
  return el("dl", { class: layout }, ...entries.map(([name, value]) => el("div", {}, el("dt", {}, name),
    el("dd", {}, value))));
}

/** The model card beyond its description, folded (`open`: unfolded, as the user left it). */
function cardDetails(name, card, open) {
  const metrics = Object.entries(card.metrics ?? {}).sort(([a], [b]) => a.localeCompare(b))
    .map(([metric, value]) => [metric, number(value)]);
  const facts = [["data", card.data], ["split", card.split], ["license", card.license],
    ["limitations", card.limitations]].filter(([, value]) => value);
  return el("details", { class: "card", open, "data-model": name },
    el("summary", {}, "Model card"),
    metrics.length ? pairs(metrics) : null,
    facts.length ? pairs(facts, "facts") : null,
    card.training_command ? el("p", {}, "Trained with ", el("code", {}, card.training_command)) : null);
}

function modelView(model, openCards) {
  const state = enumLabel(model.state, "MODEL_STATE_");
  const stats = model.stats ?? {};
  const counters = [...COUNTERS.map(([key, label]) => [label, number(stats[key])]),
    ...Object.entries(stats.backend_counters ?? {}).sort(([a], [b]) => a.localeCompare(b))
      .map(([key, value]) => [key.replaceAll("_", " "), number(value)])];
  return el("article", { class: "model", "aria-labelledby": `model-${model.name}` },
    el("header", {},
      el("h2", { id: `model-${model.name}` }, model.name),
      el("span", { class: `badge state-${state.replaceAll(" ", "-")}` }, state)),
    el("p", { class: "muted" }, [enumLabel(model.kind, "MODEL_KIND_"), `backend ${model.backend}`,
      `plugin ${model.plugin} ${model.plugin_version}`, `${number(model.parameter_count)} parameters`,
      model.precision].filter(Boolean).join(" · ")),
    model.reason ? el("p", { class: "reason" }, model.reason) : null,
    model.precision_choice ? el("p", { class: "muted" }, `Precision ${model.precision_choice}`) : null,
    model.card?.description ? el("p", {}, model.card.description) : null,
    el("h3", {}, "Counters"),
    pairs(counters, "pairs counters"),
    model.card ? cardDetails(model.name, model.card, openCards.has(model.name)) : el("p", { class: "muted" },
      "No model card."));
}

export function initModels() {
  const list = document.getElementById("models-list");
  const auto = document.getElementById("models-auto");
  let timer = null;
  let visible = false;

  async function refresh() {
    try {
      const { models = [] } = await getJson("/api/v1/models");
      const openCards = new Set([...list.querySelectorAll("details[open]")].map((d) => d.dataset.model));
      list.replaceChildren(...models.map((model) => modelView(model, openCards)));
    } catch (error) {
      report(error);
    }
  }

  function schedule() {
    clearInterval(timer);
    timer = visible && auto.checked ? setInterval(refresh, REFRESH_MS) : null;
  }

  document.getElementById("models-refresh").addEventListener("click", () => {
    notify("");
    refresh();
  });
  auto.addEventListener("change", schedule);

  return {
    show() {
      visible = true;
      refresh();
      schedule();
    },
    hide() {
      visible = false;
      schedule();
    },
  };
}
