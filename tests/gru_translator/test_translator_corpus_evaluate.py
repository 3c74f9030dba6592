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
    from rnnserve_plugins.gru_translator.evaluate import license_text

    manifest = {"source": {
        "ding": {"package": "trans-de-en", "licence": "GPL-2+"},
        "ui-gnome": {"packages": [{"package": "a", "licence": "GPL-2+"}, {"package": "b", "licence": "LGPL-2.1+"}]},
        "doc-x": {"packages": [{"package": "c"}]},
    }}
    text = license_text(manifest)
    assert "GPL-2+; LGPL-2.1+; unrecorded" in text and text.endswith("Code: MIT (as rnnserve).")
    assert "without a manifest" in license_text({})
