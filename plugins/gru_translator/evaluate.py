"""Evaluation: sacreBLEU and chrF per test part, and decoding speed (the model card: ``card.py``).

Test parts (from ``rnnserve data en-de``): one per domain, ``test.doc`` (documentation),
``test.ui`` (message catalogues), ``test.ding`` (dictionary example sentences),
``test.bible`` (verses), and ``test`` (all of them); a corpus directory made before the
domains existed has only some of them, and only those are scored. ``macro`` is the
unweighted mean over the domains scored, so that no domain counts more for having more
test pairs. Scores are sacreBLEU's defaults (13a tokenisation, exact case) against the
single German reference; signatures are recorded.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from rnnserve.plugin_api import TranslateOptions

from .backend import GruTranslator
from .corpus.sources import DOMAINS
from .data import read_parallel

DOMAIN_PARTS = tuple(f"test.{domain}" for domain in DOMAINS)
PARTS = (*DOMAIN_PARTS, "test")
MACRO = "macro"
def translate_all(translator: GruTranslator, texts: list[str], options: TranslateOptions,
                  batch_size: int = 64) -> list[str]:
    """Best translation of each text, ``batch_size`` texts per ``translate`` call."""
    out: list[str] = []
    for start in range(0, len(texts), batch_size):
        out += [r.hypotheses[0].text for r in translator.translate(texts[start: start + batch_size], options)]
    return out


def score(hypotheses: list[str], references: list[str]) -> dict:
    """sacreBLEU and chrF (corpus level) with their signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    bleu, chrf = BLEU(), CHRF()
    return {"bleu": round(bleu.corpus_score(hypotheses, [references]).score, 2),
            "chrf": round(chrf.corpus_score(hypotheses, [references]).score, 2),
            "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature())}


def available_parts(data_dir: Path, parts: tuple[str, ...] = PARTS) -> tuple[str, ...]:
    """The ``parts`` that ``data_dir`` holds with at least one pair."""
    files = {part: data_dir / f"{part}.en" for part in parts}
    return tuple(part for part, file in files.items() if file.is_file() and file.stat().st_size)


def evaluate_parts(translator: GruTranslator, data_dir: Path, options: TranslateOptions,
                   parts: tuple[str, ...] | None = None) -> dict[str, dict]:
    """Scores of each test part (default: every part ``data_dir`` holds); a sentence in several parts is
    translated once."""
    results: dict[str, dict] = {}
    cache: dict[str, str] = {}
    for part in available_parts(data_dir) if parts is None else parts:
        sources, references = read_parallel(data_dir, part)
        missing = sorted((s for s in dict.fromkeys(sources) if s not in cache), key=len)  # less padding
        cache.update(zip(missing, translate_all(translator, missing, options), strict=True))
        results[part] = score([cache[s] for s in sources], references)
    return results


def macro_average(results: dict[str, dict]) -> dict[str, float]:
    """Unweighted mean BLEU and chrF over the domain parts in ``results``."""
    domains = [results[part] for part in DOMAIN_PARTS if part in results]
    return {metric: round(sum(r[metric] for r in domains) / len(domains), 2) if domains else float("nan")
            for metric in ("bleu", "chrf")}


def decode_speed(translator: GruTranslator, texts: list[str], batch_size: int, options: TranslateOptions) -> float:
    """Sentences per second translating ``texts`` in ``translate`` calls of ``batch_size`` texts."""
    translate_all(translator, texts[:batch_size], options, batch_size)  # warm-up
    start = time.perf_counter()
    translate_all(translator, texts, options, batch_size)
    return len(texts) / (time.perf_counter() - start)


def speed_metrics(model_dir: Path, data_dir: Path, sentences: int = 64) -> dict[str, float]:
    """Sentences/s, batch 1 and 32, greedy and beam 5, float32 and int8, on the first test sentences."""
    sources, _ = read_parallel(data_dir, "test")
    metrics = {}
    for quantized in (False, True):
        translator = GruTranslator.load(model_dir, quantized=quantized)
        for beam in (1, 5):
            options = replace(translator.default_options, beam_size=beam, n_best=1)
            for batch in (1, 32):
                texts = sources[: sentences if batch == 1 else 4 * sentences]
                rate = decode_speed(translator, texts, batch, options)
                metrics[f"sent_per_s_beam{beam}_batch{batch}_{'int8' if quantized else 'fp32'}"] = round(rate, 2)
    return metrics


def full_evaluation(model_dir: Path, data_dir: Path, beams: tuple[int, ...] = (1, 5),
                    int8_beams: tuple[int, ...] = (1, 5)) -> tuple[dict[str, float], dict[str, str]]:
    """Flat metrics ``{part}_{bleu|chrf}_beam{k}[_int8]`` of ``model_dir`` and the sacreBLEU signatures."""
    metrics: dict[str, float] = {}
    signatures: dict[str, str] = {}
    runs = [(beam, False) for beam in beams] + [(beam, True) for beam in int8_beams]
    translators = {q: GruTranslator.load(model_dir, quantized=q) for q in {q for _, q in runs}}
    for beam, quantized in runs:
        translator = translators[quantized]
        options = replace(translator.default_options, beam_size=beam, n_best=1)
        results = evaluate_parts(translator, data_dir, options)
        suffix = f"beam{beam}{'_int8' if quantized else ''}"
        for part, result in (*results.items(), (MACRO, macro_average(results))):
            metrics[f"{part}_bleu_{suffix}"] = result["bleu"]
            metrics[f"{part}_chrf_{suffix}"] = result["chrf"]
        signatures = {"bleu": results["test"]["bleu_signature"], "chrf": results["test"]["chrf_signature"]}
    return metrics, signatures
