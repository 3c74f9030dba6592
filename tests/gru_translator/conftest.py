"""Shared pieces of the gru-seq2seq tests: the committed toy corpus and tiny seeded models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from rnnserve_plugins.gru_translator.model import Seq2Seq, Seq2SeqConfig
from rnnserve_plugins.gru_translator.subwords import MODEL_FILE, SubwordVocab

TOY = Path(__file__).resolve().parents[1] / "data" / "toy_translation"
TINY = {"embedding_dim": 16, "encoder_hidden": 16, "encoder_layers": 2, "decoder_hidden": 24, "decoder_layers": 2,
        "dropout": 0.1}


def tiny_model(seed: int = 0, vocab_size: int = 56, std: float | None = None, **changes) -> Seq2Seq:
    """A seeded, untrained tiny model in eval mode; ``std`` redraws every weight from N(0, std²)
    (sharper, more varied output distributions than the default initialisation)."""
    torch.manual_seed(seed)
    model = Seq2Seq(Seq2SeqConfig(vocab_size=vocab_size, **{**TINY, **changes})).eval()
    if std is not None:
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.normal_(0.0, std)
    return model


@pytest.fixture(scope="session")
def toy_vocab() -> SubwordVocab:
    return SubwordVocab.load(TOY / "toy.model")


@pytest.fixture
def toy_data(tmp_path: Path) -> Path:
    """A corpus directory in the layout of ``rnnserve data en-de`` made from the toy text (test = dev)."""
    en = (TOY / "toy.en").read_text().splitlines()
    de = (TOY / "toy.de").read_text().splitlines()
    out = tmp_path / "data"
    out.mkdir()
    for split, rows in (("train", slice(0, 260)), ("dev", slice(260, 300)), ("test", slice(260, 300)),
                        ("test.ding", slice(260, 280)), ("test.bible", slice(280, 300))):
        (out / f"{split}.en").write_text("".join(line + "\n" for line in en[rows]))
        (out / f"{split}.de").write_text("".join(line + "\n" for line in de[rows]))
    shutil.copy(TOY / "toy.model", out / MODEL_FILE)
    return out


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded (and do not fight the other tests for the cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
