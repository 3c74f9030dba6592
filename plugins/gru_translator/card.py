"""The model card of a translator checkpoint: ``MODEL_CARD.md`` (for people) and ``model_card.json``.

:func:`write_card_for` evaluates a model directory itself (``evaluate.full_evaluation``:
BLEU and chrF per test domain and their macro average, greedy and beam 5, float32 and
int8; decoding speed), translates the :data:`EVERYDAY` sentences, and documents the data
(sources, packages, licences and the training mix from the corpus manifest), split,
commands, training time and throughput and the hardware from the ``config.json`` training
record.
"""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path

import torch

from rnnserve.plugin_api import ModelCard

from .backend import GruTranslator
from .data import read_parallel
from .evaluate import DOMAIN_PARTS, MACRO, PARTS, available_parts, full_evaluation, speed_metrics, translate_all

PART_LABELS = {"test.doc": "documentation", "test.ui": "UI", "test.ding": "Ding", "test.bible": "Bible",
               "test": "combined", MACRO: "macro average"}
CODE_LICENSE = "Code: MIT (as rnnserve)."
LIMITATIONS = ("A small GRU translator trained on two CPU cores (wall time above). It knows the registers of its "
               "data (see the per-domain table): software user interfaces and documentation, dictionary example "
               "sentences and a 1932 Bible translation (archaic register, pre-1996 spelling such as 'daß'); "
               "other text, names it never saw and long sentences come out worse. Numbers, URLs, e-mail "
               "addresses, paths, format placeholders and markup tags are copied through (protected spans) "
               "where the checkpoint's vocabulary has the masks. Expect wrong words and dropped or repeated "
               "phrases; output quality is far below production systems. English→German only; no content "
               "filtering.")


#: Everyday sentences of the card's own choosing (the first six are issue 16's examples): how the
#: model does on short modern text that no test split holds.
EVERYDAY = (
    "Click here to save your changes.",
    "Where is the train station?",
    "Server is in read-only mode.",
    "Imagine you are interested in package XYZ.",
    "The game is over.",
    "I would like a cup of coffee, please.",
    "The file could not be opened.",
    "Do you want to delete this folder?",
    "My brother lives in Berlin.",
    "The weather is nice today.",
    "Please enter your password.",
    "We are going to the cinema tonight.",
    "How much does this book cost?",
    "The meeting starts at 9 o'clock.",
    "Press Enter to continue.",
    "I don't understand the question.",
    "This program is free software.",
    "She works in a hospital.",
    "Can you help me, please?",
    "The children are playing in the garden.",
)


def license_text(manifest: dict) -> str:
    """The card's licence: the licences of the data the weights were trained on (from the corpus
    manifest), then the code's."""
    licences = sorted({package.get("licence") or "unrecorded"
                       for entry in manifest.get("source", {}).values()
                       for package in entry.get("packages", [entry])})
    if not licences:
        return f"Model weights: trained on a corpus without a manifest; check its sources' licences. {CODE_LICENSE}"
    return ("Model weights: trained on text under these licences (each source's in the manifest under Data): "
            + "; ".join(licences) + ". Weights learnt from copyleft text are distributed under the strongest of "
            "them that applies (GPL-2.0-or-later where GPL text is included) unless its authors grant otherwise. "
            + CODE_LICENSE)


def _describe_data(manifest: dict) -> str:
    if not manifest:
        return "unknown corpus (no manifest.json)"
    source = manifest.get("source", {})
    counts = manifest.get("counts", {})
    files = ", ".join(f"{name} sha256 {info['sha256']} ({info['lines']:,} lines)"
                      for name, info in manifest.get("files", {}).items())
    subwords = manifest.get("subwords", {})
    described = []
    for name, entry in source.items():
        packages = entry.get("packages", [entry])
        described.append(f"{name} ({entry.get('domain', name)}; "
                         + ", ".join(f"{p.get('file', p.get('package'))} sha256 {p.get('sha256', '?')}"
                                     for p in packages)
                         + f"; {manifest.get('mix', {}).get(name, {}).get('train', '?')} training pairs)")
    return (f"English→German sentence pairs built by `rnnserve data en-de` from: {'; '.join(described)}. "
            f"Cleaning: {manifest.get('cleaning', '')}. Filter: {manifest.get('filter', '')}. "
            f"Pairs: {counts}. Files: {files}. Subwords: "
            f"{json.dumps(subwords) if subwords else 'see sentencepiece.model'}.")


def training_throughput(training: dict) -> dict[str, float]:
    """Mean training pairs/s over the logged intervals of the run (``training`` from config.json, whose
    ``history`` the trainer records) and the run's CPU hours (wall time x its recorded torch threads)."""
    rows = [row["pairs_per_s"] for row in training.get("history", {}).get("train", []) if "pairs_per_s" in row]
    out: dict[str, float] = {}
    if rows:
        out["train_pairs_per_s_mean"] = round(sum(rows) / len(rows), 1)
    threads = training.get("train", {}).get("threads", 0)
    if "elapsed_s" in training and threads:  # 0: torch's default, which the record does not say
        out["training_cpu_hours"] = round(training["elapsed_s"] / 3600 * threads, 2)
    return out


def write_card_for(model_dir: Path, data_dir: Path, *, extra_metrics: dict[str, float] | None = None,
                   speed_sentences: int = 64, notes: str = "") -> ModelCard:
    """Evaluate ``model_dir`` on the test parts (greedy and beam 5, float32 and int8), translate the
    :data:`EVERYDAY` sentences, time decoding, write both cards.

    ``notes`` (markdown) is added to MODEL_CARD.md's training section, e.g. how a run was resumed.
    """
    translator = GruTranslator.load(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    training = config.get("training", {})
    manifest_file = data_dir / "manifest.json"
    manifest = training.get("data") or (json.loads(manifest_file.read_text()) if manifest_file.exists() else {})
    metrics, signatures = full_evaluation(model_dir, data_dir)
    metrics |= extra_metrics or {}
    metrics |= speed_metrics(model_dir, data_dir, speed_sentences)
    sources = read_parallel(data_dir, "test")[0][: 4 * speed_sentences]
    metrics["speed_source_pieces_mean"] = round(sum(len(translator.vocab.encode(s)) for s in sources) / len(sources), 1)
    metrics["parameters"] = translator.parameter_count()
    metrics["model_megabytes"] = round((model_dir / "model.safetensors").stat().st_size / 1e6, 2)
    if "elapsed_s" in training and "training_wall_time_min" not in metrics:
        metrics["training_wall_time_min"] = round(training["elapsed_s"] / 60, 1)
    metrics = training_throughput(training) | metrics
    cfg = translator.config
    card = ModelCard(
        description=(f"English→German GRU translator: {cfg.encoder_layers}-layer bidirectional GRU encoder "
                     f"({cfg.encoder_hidden} units per direction), {cfg.decoder_layers}-layer GRU decoder "
                     f"({cfg.decoder_hidden} units) with Luong attention and input feeding, {cfg.embedding_dim}-d "
                     f"{'tied ' if cfg.tie_embeddings else ''}embeddings, joint {cfg.vocab_size}-piece "
                     f"SentencePiece vocabulary, {translator.parameter_count():,} parameters."),
        data=_describe_data(manifest),
        split=manifest.get("split", ""),
        training_command=training.get("command", ""),
        metrics=metrics, license=license_text(manifest), limitations=LIMITATIONS)
    (model_dir / "model_card.json").write_text(json.dumps(dataclasses.asdict(card), indent=2) + "\n")
    samples = _samples(translator, data_dir)
    everyday = list(zip(EVERYDAY, translate_all(translator, list(EVERYDAY), translator.default_options), strict=True))
    (model_dir / "MODEL_CARD.md").write_text(_markdown(card, training, config, signatures, samples, everyday,
                                                       manifest, data_dir, notes))
    return card


def _mix_table(manifest: dict) -> list[str]:
    """Markdown rows: each source's domain, training pairs and share of the training set."""
    mix = manifest.get("mix", {})
    if not mix:
        return []
    lines = ["| source | domain | train pairs | share |", "|---|---|---:|---:|"]
    for name, entry in manifest.get("source", {}).items():
        row = mix.get(name, {})
        lines.append(f"| {name} | {entry.get('domain', name)} | {row.get('train', 0):,} | "
                     f"{row.get('train_share_percent', '?')}% |")
    return [*lines, ""]


def _samples(translator: GruTranslator, data_dir: Path) -> list[tuple[str, str, str]]:
    rows = []
    for part in available_parts(data_dir, DOMAIN_PARTS):
        sources, references = read_parallel(data_dir, part)
        for src, ref, hyp in zip(sources[:3], references[:3], translate_all(translator, sources[:3],
                                 translator.default_options), strict=True):
            rows.append((src, ref, hyp))
    return rows


def _markdown(card: ModelCard, training: dict, config: dict, signatures: dict[str, str],
              samples: list[tuple[str, str, str]], everyday: list[tuple[str, str]], manifest: dict,
              data_dir: Path, notes: str = "") -> str:
    m = card.metrics
    decoding = config.get("decoding", {})

    shown = [part for part in (*PARTS, MACRO) if any(key.startswith(f"{part}_bleu_") for key in m)]

    def cell(part: str, metric: str, suffix: str) -> str:
        value = m.get(f"{part}_{metric}_{suffix}")
        return f"{value:.2f}" if isinstance(value, int | float) else "–"

    lines = [
        "# Model card: en-de-gru", "", card.description, "",
        "## Data", "", card.data, "", *_mix_table(manifest),
        "## Split", "", card.split, "",
        "## Training", "", "Exact commands:", "", "```",
        f"rnnserve data en-de --out {data_dir}   # corpus + joint SentencePiece model",
        card.training_command, "```", "",
        f"- Hyper-parameters: `{json.dumps(training.get('train', {}))}`",
        f"- Model config: `{json.dumps(config['model'])}`",
        f"- Best checkpoint (by greedy dev BLEU) at step {training.get('step', '?')}, epoch index "
        f"{training.get('epoch', '?')} (0-based); dev {json.dumps(training.get('dev', {}))}",
        f"- Weights stored as {config.get('storage_dtype')} ({m.get('model_megabytes', '?')} MB); computed in "
        "float32",
        f"- Training wall time: {m.get('training_wall_time_min', '?')} min (excluding dev evaluations), "
        f"{m.get('training_cpu_hours', '?')} CPU hours; {m.get('train_pairs_per_s_mean', '?')} training pairs/s "
        "on average over the logged intervals",
        f"- Hardware: {training.get('hardware', '?')}", "",
        *([notes.strip(), ""] if notes.strip() else []),
        "## Metrics", "",
        "sacreBLEU and chrF on the test split, one reference. Signatures:", "",
        f"- BLEU: `{signatures.get('bleu', '?')}`", f"- chrF: `{signatures.get('chrf', '?')}`", "",
        f"Default decoding: `{json.dumps(decoding)}`.", "",
        "| decoding | " + " | ".join(f"{PART_LABELS[part]} {metric}" for part in shown for metric in ("BLEU", "chrF"))
        + " |", "|---" * (1 + 2 * len(shown)) + "|",
    ]
    labels = {"beam1": "greedy", "beam5": "beam 5", "beam1_int8": "greedy, int8 dynamic quantization",
              "beam5_int8": "beam 5, int8 dynamic quantization",
              "beam5_float32": "beam 5, float32 weights before float16 storage"}
    for suffix, label in labels.items():
        if f"test_bleu_{suffix}" in m:
            lines.append(f"| {label} | " + " | ".join(cell(part, metric, suffix) for part in shown
                                                       for metric in ("bleu", "chrf")) + " |")
    lines += ["", f"Decoding speed in sentences/s through `GruTranslator.translate`, on the first 64 (batch 1) and "
              f"256 (batch 32) sentences of the combined test split ({m.get('speed_source_pieces_mean', '?')} "
              f"source pieces on average; torch threads: {torch.get_num_threads()}, {platform.machine()}, measured "
              "when the card was written):", "",
              "| decoding | batch 1 fp32 | batch 1 int8 | batch 32 fp32 | batch 32 int8 |", "|---|---|---|---|---|"]
    for beam in (1, 5):
        lines.append(f"| {'greedy' if beam == 1 else f'beam {beam}'} | " + " | ".join(
            str(m.get(f"sent_per_s_beam{beam}_batch{batch}_{kind}", "–"))
            for batch in (1, 32) for kind in ("fp32", "int8")) + " |")
    lines += ["", "## Everyday sentences (default decoding)", "", "| English | en-de-gru |", "|---|---|"]
    lines += [f"| {source} | {output} |" for source, output in everyday]
    lines += ["", "## Samples (beam 5)", "", "| source | reference | translation |", "|---|---|---|"]
    lines += [f"| {s} | {r} | {h} |".replace("\n", " ") for s, r, h in samples]
    lines += ["", "## License", "", card.license, "", "## Limitations", "", card.limitations, ""]
    return "\n".join(lines)
