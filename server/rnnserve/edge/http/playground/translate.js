// The Translate view: a text in, the n-best hypotheses out, the attention matrix of the chosen one.

import { postJson } from "./api.js";
import { attentionSvg } from "./attention.js";
import { el, formatMs, formView, notify, report } from "./ui.js";

const field = (id) => document.getElementById(`translate-${id}`);

export function initTranslate() {
  const form = field("form");
  const button = field("run");
  const list = field("hypotheses");
  const figure = field("attention");

  function choose(hypothesis) {
    figure.querySelector("svg")?.remove();
    figure.hidden = !hypothesis.attention;
    if (hypothesis.attention) figure.prepend(attentionSvg(hypothesis.attention));
  }

  function show(hypotheses, ms) {
    const options = hypotheses.map((h, i) => el("label", { class: "hypothesis" },
      el("input", { type: "radio", name: "hypothesis", value: String(i), checked: i === 0,
        onchange: () => choose(h) }),
      el("span", { class: "text" }, h.text),
      el("span", { class: "score" }, `score ${(h.score ?? 0).toFixed(2)} · log P ${(h.log_probability ?? 0).toFixed(2)}`)));
    list.replaceChildren(el("legend", {}, `Hypotheses, best first (${formatMs(ms)})`), ...options);
    list.hidden = false;
    choose(hypotheses[0]);
  }

  async function run() {
    notify("");
    button.disabled = true;
    const body = {
      model: field("model").value, texts: [field("text").value], return_attention: true,
      beam_size: field("beam").valueAsNumber || 0, n_best: field("n-best").valueAsNumber || 0,
    };
    const started = performance.now();
    try {
      const response = await postJson("/api/v1/translate", body);
      show(response.translations[0].hypotheses, performance.now() - started);
    } catch (error) {
      report(error);
    } finally {
      button.disabled = false;
    }
  }

  return formView(form, field("text"), field("model"), run);
}
