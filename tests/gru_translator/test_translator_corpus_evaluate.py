"""Per-domain evaluation: every test part a corpus holds is scored, plus the macro average of the domains."""

from __future__ import annotations

import pytest

from rnnserve_plugins.gru_translator.backend import GruTranslator
from rnnserve_plugins.gru_translator.checkpoint import save_model
from rnnserve_plugins.gru_translator.evaluate import available_parts, evaluate_parts, macro_average
from tests.gru_translator.conftest import TOY, tiny_model


def write_part(data, name, en, de):
    (data / f"{name}.en").write_text("".join(line + "\n" for line in en))
    (data / f"{name}.de").write_text("".join(line + "\n" for line in de))


def test_every_domain_part_and_the_macro_average(tmp_path, toy_vocab):
    en, de = (TOY / "toy.en").read_text().splitlines(), (TOY / "toy.de").read_text().splitlines()
    data = tmp_path / "data"
    data.mkdir()
    write_part(data, "test.doc", en[:6], de[:6])
    write_part(data, "test.ui", en[6:10], de[6:10])
    write_part(data, "test.ding", en[:2], ["Etwas ganz anderes hier.", "Noch etwas anderes."])
    write_part(data, "test.bible", [], [])  # empty: not scored
    write_part(data, "test", en[:10] + en[:2], [*de[:10], "Etwas ganz anderes hier.", "Noch etwas anderes."])
    assert available_parts(data) == ("test.doc", "test.ui", "test.ding", "test")
    save_model(tmp_path / "tiny", tiny_model(seed=2, std=0.3), toy_vocab)
    translator = GruTranslator.load(tmp_path / "tiny")
    results = evaluate_parts(translator, data, translator.default_options)
    assert list(results) == ["test.doc", "test.ui", "test.ding", "test"]
    macro = macro_average(results)
    for metric in ("bleu", "chrf"):
        domains = [results[p][metric] for p in ("test.doc", "test.ui", "test.ding")]
        assert macro[metric] == pytest.approx(sum(domains) / 3, abs=0.01)
    # a part scored alone scores the same: translations shared between parts do not leak references
    assert evaluate_parts(translator, data, translator.default_options, ("test.ding",)) == \
        {"test.ding": results["test.ding"]}


def test_the_card_licence_names_every_licence_of_the_data() -> None:
    from rnnserve_plugins.gru_translator.card import license_text

    manifest = {"source": {
        "ding": {"package": "trans-de-en", "licence": "GPL-2+"},
        "ui-gnome": {"packages": [{"package": "a", "licence": "GPL-2+"}, {"package": "b", "licence": "LGPL-2.1+"}]},
        "doc-x": {"packages": [{"package": "c"}]},
    }}
    text = license_text(manifest)
    assert "GPL-2+; LGPL-2.1+; unrecorded" in text and text.endswith("Code: MIT (as rnnserve).")
    assert "without a manifest" in license_text({})


def test_the_card_reports_every_domain_precision_the_mix_and_the_everyday_sentences(toy_data, toy_vocab):
    """write_card_for on a tiny model: greedy and beam 5 in float32 and int8 per domain, the data mix
    from the manifest, training throughput and CPU hours from the run's history, and the 20 everyday
    sentences each with the model's output."""
    import json

    from rnnserve_plugins.gru_translator.card import EVERYDAY, write_card_for

    model_dir = toy_data.parent / "tiny"
    save_model(model_dir, tiny_model(seed=2, std=0.3), toy_vocab,
               {"elapsed_s": 7200.0, "train": {"threads": 1},
                "history": {"train": [{"step": 10, "pairs_per_s": 90.0}, {"step": 20, "pairs_per_s": 110.0}]}})
    manifest = {"source": {"ding": {"domain": "ding", "package": "trans-de-en", "licence": "GPL-2+"},
                           "bible": {"domain": "bible", "package": "x", "licence": "PD"}},
                "mix": {"ding": {"train": 150, "train_share_percent": 57.7},
                        "bible": {"train": 110, "train_share_percent": 42.3}}}
    (toy_data / "manifest.json").write_text(json.dumps(manifest))
    card = write_card_for(model_dir, toy_data, speed_sentences=2)
    for suffix in ("beam1", "beam5", "beam1_int8", "beam5_int8"):
        for part in ("test.ding", "test.bible", "macro"):
            assert isinstance(card.metrics[f"{part}_chrf_{suffix}"], float), (part, suffix)
    assert card.metrics["train_pairs_per_s_mean"] == 100.0 and card.metrics["training_cpu_hours"] == 2.0
    text = (model_dir / "MODEL_CARD.md").read_text()
    assert "| ding | ding | 150 | 57.7% |" in text and "| bible | bible | 110 | 42.3% |" in text
    assert "| greedy, int8 dynamic quantization |" in text
    everyday = text.split("## Everyday sentences")[1].split("##")[0]
    assert len(EVERYDAY) == 20 and all(f"| {sentence} | " in everyday for sentence in EVERYDAY)
    assert "2.0 CPU hours; 100.0 training pairs/s" in text
