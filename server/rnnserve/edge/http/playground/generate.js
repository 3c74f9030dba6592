// The Generate view: a prompt and sampling parameters, the output streamed (server-sent events), the
// seed of each sample shown so a run can be repeated.

import { postStream } from "./api.js";
import { el, enumLabel, formatMs, formView, notify, report } from "./ui.js";

const field = (id) => document.getElementById(`generate-${id}`);

/** The GenerateRequest of the form; empty fields are left to the server's defaults. */
function request() {
  const body = { model: field("model").value, prompt: field("prompt").value };
  const numbers = { max_new_tokens: "max", temperature: "temperature", top_k: "top-k", top_p: "top-p",
    repetition_penalty: "penalty", n: "n" };
  for (const [name, id] of Object.entries(numbers)) {
    const value = field(id).valueAsNumber;
    if (!Number.isNaN(value)) body[name] = value;
  }
  const seed = field("seed").value.trim();
  if (seed) body.seed = seed; // a string: uint64 in protobuf's JSON mapping, exact beyond 2^53
  const stop = field("stop").value.split("\n").filter(Boolean).map((s) => s.replaceAll("\\n", "\n"));
  if (stop.length) body.stop = stop;
  return body;
}

/** The output block of one sample, filled in as its chunks arrive. */
function sampleView(index, prompt, started) {
  const generated = el("span", { class: "generated" });
  const meta = el("p", { class: "meta" }, "waiting…");
  const view = el("article", { class: "sample", "aria-label": `Sample ${index + 1}` },
    el("p", { class: "text" }, el("span", { class: "prompt" }, prompt), generated), meta);
  let firstAt = null;
  let chars = 0;
  return {
    view,
    add(chunk) {
      const now = performance.now();
      firstAt ??= now;
      generated.append(chunk.text ?? "");
      chars += Array.from(chunk.text ?? "").length;
      const finished = chunk.finish_reason && chunk.finish_reason !== "FINISH_REASON_UNSPECIFIED";
      const seconds = (now - firstAt) / 1000;
      meta.replaceChildren(
        el("span", { class: "seed" }, `seed ${chunk.seed}`),
        el("span", {}, `first chunk ${formatMs(firstAt - started)}`),
        seconds > 0 ? el("span", {}, `${Math.round(chars / seconds)} chars/s`) : null,
        el("span", {}, finished
          ? `${chunk.generated_tokens} tokens · ${enumLabel(chunk.finish_reason, "FINISH_REASON_")}` : "streaming…"),
      );
    },
    stopped() {
      meta.append(el("span", { class: "finish" }, "stopped"));
    },
  };
}

export function initGenerate() {
  const form = field("form");
  const button = field("run");
  const output = field("output");
  let controller = null;

  async function run() {
    if (controller) {
      controller.abort(); // closes the stream: the server cancels the generation
      return;
    }
    notify("");
    const body = request();
    const samples = new Map();
    const started = performance.now();
    output.replaceChildren();
    controller = new AbortController();
    button.textContent = "Stop";
    try {
      for await (const chunk of postStream("/api/v1/generate/stream", body, controller.signal)) {
        const index = chunk.index ?? 0;
        if (!samples.has(index)) {
          samples.set(index, sampleView(index, body.prompt, started));
          output.replaceChildren(...[...samples.keys()].sort((a, b) => a - b).map((i) => samples.get(i).view));
        }
        samples.get(index).add(chunk);
      }
    } catch (error) {
      if (error.name === "AbortError") for (const sample of samples.values()) sample.stopped();
      else report(error);
    } finally {
      controller = null;
      button.textContent = "Generate";
    }
  }

  return formView(form, field("prompt"), field("model"), run);
}
