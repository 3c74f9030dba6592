"""Model cards: ``MODEL_CARD.md`` (for people) and ``model_card.json`` (``rnnserve.plugin_api.ModelCard``).

:func:`write_card_for` evaluates a model directory itself: validation and test loss in nats
and bits per character; the int8 and bfloat16 test losses and their quality costs against
float32 (``precision_cost_nats_<precision>``, what ``dtype = "auto"`` reads:
``rnnserve.host.precision_choice``; int8 is measured on the decoding path, one fused int8 step per
character, the path that generates text); the test loss of each source of a ``rnnserve data
english`` corpus; decoding-step latency of the fused step and of the plain ``nn.LSTM`` path.
It documents the data (and its mix), split, training command, wall time, hardware and a few
samples from the ``config.json`` training record. What it says about the text (samples,
limitations, licence) follows the corpus the manifest describes: Austen's novels or modern
English.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from rnnserve.plugin_api import ModelCard, cost_metrics

from .backend import CharRNNBackend
from .checkpoint import load_model
from .data import encode_documents, read_split
from .evaluate import NATS_TO_BITS, evaluate_loss, sample_text, step_latency_ms
from .model import CharRNN


@dataclass(frozen=True)
class Corpus:
    """What a card says about the kind of text a model was trained on (:func:`corpus_of` picks one)."""

    #: Completes "predicts the next character of ...".
    text: str
    #: The label of the test split in the metrics table.
    test_label: str
    sample_prompts: tuple[str, ...]
    limitations: str


AUSTEN = Corpus(
    text="Jane Austen-style prose",
    test_label="test (Persuasion)",
    sample_prompts=("It is a truth universally acknowledged", "Captain Wentworth", "\"My dear Miss"),
    limitations=("A character-level model of early-19th-century English prose: it imitates Austen's style but "
                 "has no knowledge or reasoning, invents names, facts and plots, and loses coherence after a "
                 "sentence or two. Characters outside its vocabulary become <unk> (reported by the server). "
                 "No end-of-text token: generation stops only on length or stop sequences. Trained on five "
                 "novels only; loss on other text is far higher. No content filtering."))
ENGLISH = Corpus(
    text="modern English prose (software documentation, manuals, help pages and interface text)",
    test_label="test (held-out paragraphs of every source)",
    sample_prompts=("To install the package, ", "The following example shows how to", "If you want to"),
    limitations=("A character-level model of the English of software documentation, manuals and user "
                 "interfaces: it writes fluent-looking technical prose but has no knowledge or reasoning and "
                 "invents option names, commands and facts. Printable ASCII only: other characters (curly "
                 "quotes, accents, symbols) become <unk>. Code, tables and option lists were removed from its "
                 "data, so it continues them poorly; fiction, conversation and e-mail are further from its data "
                 "than documentation is. No end-of-text token. No content filtering."))
AUSTEN_LICENSE = ("Model weights: MIT (as rnnserve). Training text: Jane Austen's novels, public domain, as "
                  "packaged by the janeaustenr R package (MIT) in Debian's r-cran-janeaustenr.")


def corpus_of(manifest: dict) -> Corpus:
    """:data:`ENGLISH` for a ``rnnserve data english`` manifest (it lists ``sources``), else :data:`AUSTEN`."""
    return ENGLISH if "sources" in manifest else AUSTEN


#: Licence families, by the start of a Debian copyright file's licence name (case-insensitive).
LICENCE_FAMILIES = (("AGPL", "AGPL"), ("LGPL", "LGPL"), ("GPL", "GPL"), ("GFDL", "GFDL"), ("FDL", "GFDL"),
                    ("BSD", "BSD"), ("EXPAT", "MIT/Expat"), ("MIT", "MIT/Expat"), ("X11", "MIT/Expat"),
                    ("APACHE", "Apache"), ("MPL", "MPL"), ("PSF", "PSF"), ("PYTHON", "PSF"), ("CC-BY-SA", "CC-BY-SA"),
                    ("CC-BY", "CC-BY"), ("CC0", "CC0"), ("PUBLIC", "public domain"), ("ZLIB", "Zlib"),
                    ("ISC", "ISC"), ("OFL", "OFL"), ("ARTISTIC", "Artistic"), ("BSL", "Boost"), ("BOOST", "Boost"))


def license_of(manifest: dict) -> str:
    """The card's licence: the Austen text's, or the licence families the English sources' packages
    declare (each package's licences are in the corpus manifest, recorded in config.json)."""
    if "sources" not in manifest:
        return AUSTEN_LICENSE
    families, packages = set(), set()
    for source in manifest["sources"].values():
        for package in source.get("packages", []):
            packages.add(package.get("package", package.get("file")))
            for part in re.split(r" \| | and | or |, ", package.get("licence") or ""):
                name = part.strip().upper()
                families.add(next((family for prefix, family in LICENCE_FAMILIES if name.startswith(prefix)),
                                  "other (see the manifest)") if name else "unrecorded")
    return (f"Model weights: trained on documentation and interface text from {len(packages)} Debian packages, "
            "whose copyright files declare licences of these families: " + ", ".join(sorted(families)) + " (each "
            "package's own in the corpus manifest, recorded in config.json under training.data). Weights learnt "
            "from copyleft text are distributed under the strongest of them that applies (GPL/GFDL) unless its "
            "authors grant otherwise. Code: MIT (as rnnserve).")


def _measure(model: CharRNN, backend: CharRNNBackend, quantized: CharRNNBackend) -> dict[str, float]:
    """Step latency in ms at batch 1 and 64: fused step, int8 fused step, default (``forward`` with T=1) path."""
    def default(tokens: torch.Tensor, state: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple]:
        logits, state = model(tokens[:, None], state)
        return logits[:, 0], state

    metrics = {}
    for batch in (1, 64):
        times = step_latency_ms({"fused": backend.step, "fused_int8": quantized.step, "default": default},
                                backend.initial_state(batch), model.config.vocab_size)
        metrics.update({f"step_ms_batch{batch}_{name}": round(ms, 3) for name, ms in times.items()})
    return metrics


def _describe_source(manifest: dict) -> str:
    """The corpus origin as recorded by ``rnnserve data english`` (``sources``), ``data.prepare``
    (``source``, a dict) or by hand (a string)."""
    if "sources" in manifest:
        described = []
        for name, entry in manifest["sources"].items():
            packages = ", ".join(f"{p['file']} sha256 {p['sha256']}" for p in entry.get("packages", []))
            described.append(f"{name} ({entry.get('chars', {}).get('train', 0):,} training chars; {packages})")
        return (f"Modern English prose built by `rnnserve data english` from Debian packages (reserved for outside "
                f"evaluation and never read: {', '.join(manifest.get('reserved_packages_refused', []))}): "
                f"{'; '.join(described)}. Charset: {manifest.get('charset', '?')}; layout: "
                f"{manifest.get('layout', '?')}")
    source = manifest.get("source")
    if isinstance(source, dict):
        return (f"Jane Austen's six novels from the Debian package {source.get('debian_package')} "
                f"({source.get('deb_file')}, sha256 {source.get('deb_sha256')}), cleaned and split by "
                "`rnnserve data austen` (one paragraph per line, whitespace normalised)")
    return source or "unknown corpus"


def write_card_for(model_dir: Path, data_dir: Path, *, wall_time_s: float | None = None,
                   extra_metrics: dict[str, float] | None = None, streams: int = 32) -> ModelCard:
    """Evaluate ``model_dir`` on ``data_dir``'s val and test splits and write both card files there.

    ``wall_time_s`` defaults to the elapsed time recorded in ``model_dir/../last`` (a training run).
    """
    model, vocab, config = load_model(model_dir)
    training = config.get("training", {})
    backend = CharRNNBackend(model, vocab)
    val = evaluate_loss(model, encode_documents(vocab, read_split(data_dir, "val")), vocab.bos_id, streams=streams)
    test_tokens = encode_documents(vocab, read_split(data_dir, "test"))
    test = evaluate_loss(model, test_tokens, vocab.bos_id, streams=streams)
    per_source = {path.name.removeprefix("test.").removesuffix(".txt"): path
                  for path in sorted(data_dir.glob("test.*.txt"))}
    source_losses = {f"test_{name}_bits_per_char": round(evaluate_loss(
        model, encode_documents(vocab, path.read_text()), vocab.bos_id, streams=streams) * NATS_TO_BITS, 4)
        for name, path in per_source.items()}
    quantized = CharRNNBackend(model, vocab, quantized=True)
    test_int8 = evaluate_loss(quantized, test_tokens, vocab.bos_id, streams=streams, stepwise=True)
    bfloat16 = CharRNNBackend.load(model_dir, dtype=torch.bfloat16)  # its own copy: the backend converts in place
    test_bf16 = evaluate_loss(bfloat16, test_tokens, vocab.bos_id, streams=streams)
    metrics = {"val_nats_per_char": round(val, 4), "val_bits_per_char": round(val * NATS_TO_BITS, 4),
               "test_nats_per_char": round(test, 4), "test_bits_per_char": round(test * NATS_TO_BITS, 4),
               "test_nats_per_char_int8": round(test_int8, 4), "test_nats_per_char_bfloat16": round(test_bf16, 4),
               **cost_metrics(test, {"int8": test_int8, "bfloat16": test_bf16}), **source_losses,
               **(extra_metrics or {}),
               **_measure(model, backend, quantized)}
    run_state = model_dir.parent / "last" / "trainer_state.json"  # the layout train() writes
    if wall_time_s is None and run_state.exists():
        wall_time_s = json.loads(run_state.read_text())["elapsed_s"]
    if wall_time_s is not None:
        metrics["training_wall_time_min"] = round(wall_time_s / 60, 1)
    manifest = training.get("data", {})
    files = manifest.get("files", {})
    hashes = ", ".join(f"{name} sha256 {info['sha256']} ({info['chars']:,} chars)" for name, info in files.items())
    cfg = model.config
    corpus = corpus_of(manifest)
    card = ModelCard(
        description=(f"Character-level language model: {cfg.num_layers}-layer {cfg.cell} with {cfg.hidden_size} "
                     f"units, {cfg.embedding_dim}-d embeddings, {vocab.size} tokens, "
                     f"{backend.parameter_count():,} parameters; predicts the next character of {corpus.text}."),
        data=f"{_describe_source(manifest)}." + (f" {hashes}." if hashes else ""),
        split=manifest.get("split", ""),
        training_command=training.get("command", ""),
        metrics=metrics, license=license_of(manifest), limitations=corpus.limitations)
    (model_dir / "model_card.json").write_text(json.dumps(dataclasses.asdict(card), indent=2) + "\n")
    samples = [(p, sample_text(backend, p, 300, temperature=0.7, seed=i)) for i, p in enumerate(corpus.sample_prompts)]
    (model_dir / "MODEL_CARD.md").write_text(_markdown(model_dir.name, card, training, config, samples, streams,
                                                       corpus, manifest))
    return card


def _mix_table(manifest: dict) -> list[str]:
    """Markdown rows: each English source's packages, training characters and share of the training text."""
    if "sources" not in manifest:
        return []
    lines = ["| source | packages | train chars | share |", "|---|---:|---:|---:|"]
    for name, entry in manifest["sources"].items():
        lines.append(f"| {name} | {len(entry.get('packages', []))} | {entry.get('chars', {}).get('train', 0):,} | "
                     f"{100 * manifest.get('mix', {}).get(name, 0):.1f}% |")
    return [*lines, ""]


def _markdown(name: str, card: ModelCard, training: dict, config: dict, samples: list[tuple[str, str]],
              streams: int, corpus: Corpus, manifest: dict) -> str:
    m = card.metrics
    lines = [
        f"# Model card: {name}", "", card.description, "",
        "## Data", "", card.data, "",
        *_mix_table(manifest),
        "## Split", "", card.split, "",
        "## Training", "",
        "Exact command:", "", "```", card.training_command, "```", "",
        f"- Hyper-parameters: `{json.dumps(training.get('train', {}))}`",
        f"- Model config: `{json.dumps(config['model'])}`",
        f"- Best checkpoint at step {training.get('step', '?')}; weights stored as {config.get('storage_dtype')}",
        f"- Wall time: {m.get('training_wall_time_min', '?')} min (the trainer's clock, summed over resumed "
        "segments; steps redone after a kill are not counted twice)",
        f"- Hardware: {training.get('hardware', '?')}",
        "", "## Metrics", "",
        f"Loss per character, reading the text after `<bos>` from the zero state ({streams} parallel pieces, "
        "512 characters of burn-in context each; every character of the split is scored once).", "",
        "| split | nats/char | bits/char |", "|---|---|---|",
        f"| validation | {m['val_nats_per_char']:.4f} | {m['val_bits_per_char']:.4f} |",
        f"| {corpus.test_label} | {m['test_nats_per_char']:.4f} | {m['test_bits_per_char']:.4f} |",
        f"| test, int8 (`quantize = true`; decoding path, int8 steps) | {m['test_nats_per_char_int8']:.4f} | "
        f"{m['test_nats_per_char_int8'] * 1.4426950408889634:.4f} |",
    ]
    if "test_nats_per_char_bfloat16" in m:
        lines.append(f"| test, bfloat16 (`dtype = \"bfloat16\"`) | {m['test_nats_per_char_bfloat16']:.4f} | "
                     f"{m['test_nats_per_char_bfloat16'] * 1.4426950408889634:.4f} |")
    if "test_nats_per_char_float32" in m:
        lines.append(f"| test, float32 weights before float16 storage | {m['test_nats_per_char_float32']:.4f} | "
                     f"{m['test_nats_per_char_float32'] * 1.4426950408889634:.4f} |")
    costs = [(p, m[f"precision_cost_nats_{p}"]) for p in ("bfloat16", "int8") if f"precision_cost_nats_{p}" in m]
    if costs:
        lines += ["", "Quality cost of each reduced precision (test nats/char added to float32's; `dtype = \"auto\"` "
                  "serves the fastest precision whose cost is within `max_precision_cost`): "
                  + ", ".join(f"{p} {cost:+.5f}" for p, cost in costs) + "."]
    sources = [key.removeprefix("test_").removesuffix("_bits_per_char") for key in m
               if key.startswith("test_") and key.endswith("_bits_per_char") and key != "test_bits_per_char"]
    if sources:
        lines += ["", "Test loss of each source's held-out paragraphs:", "", "| source | bits/char |", "|---|---|",
                  *(f"| {source} | {m[f'test_{source}_bits_per_char']:.4f} |" for source in sources)]
    lines += [
        "", f"Decoding step latency (median, ms; {torch.get_num_threads()} torch threads, "
        f"{platform.machine()}, measured when the card was written, the step functions taking turns so "
        "that load from other processes on the machine affects them alike):", "",
        "| batch | fused step | fused step, int8 | default nn.LSTM path (forward with T = 1) |", "|---|---|---|---|",
        *(f"| {b} | {m[f'step_ms_batch{b}_fused']:.3f} | {m[f'step_ms_batch{b}_fused_int8']:.3f} | "
          f"{m[f'step_ms_batch{b}_default']:.3f} |" for b in (1, 64)),
        "", "## Samples", "", "Temperature 0.7, 300 characters, fixed seeds.", "",
    ]
    for prompt, text in samples:
        lines += [f"> **{prompt}**{text}".replace("\n", "\n>\n> "), ""]
    lines += ["## License", "", card.license, "", "## Limitations", "", card.limitations, ""]
    return "\n".join(lines)
