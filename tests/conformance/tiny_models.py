"""Tiny, seeded, untrained models of the built-in backends, written with each plugin's own checkpoint code."""

from __future__ import annotations

from pathlib import Path

import torch

from rnnserve.ops.config import ModelSpec

DATA = Path(__file__).resolve().parents[1] / "data"
#: What the tiny character vocabulary covers: the committed Austen slice.
AUSTEN = (DATA / "austen_slice" / "train.txt").read_text()


def tiny_char_lstm(directory: Path, name: str = "tiny-char-lstm", cell: str = "lstm") -> ModelSpec:
    """A randomly initialised 2-layer CharRNN over the Austen slice's characters."""
    from rnnserve_plugins.char_lstm.checkpoint import save_model
    from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig
    from rnnserve_plugins.char_lstm.vocab import CharVocab

    torch.manual_seed(0)
    vocab = CharVocab.build(AUSTEN)
    model = CharRNN(CharRNNConfig(vocab_size=vocab.size, cell=cell, embedding_dim=8, hidden_size=24, num_layers=2))
    save_model(directory / name, model, vocab)
    return ModelSpec(name, "char-lstm", path=str(directory / name))


def tiny_gru_translator(directory: Path, name: str = "tiny-gru-seq2seq") -> ModelSpec:
    """A randomly initialised Seq2Seq over the committed toy SentencePiece model (56 pieces)."""
    from rnnserve_plugins.gru_translator.checkpoint import save_model
    from rnnserve_plugins.gru_translator.model import Seq2Seq, Seq2SeqConfig
    from rnnserve_plugins.gru_translator.subwords import SubwordVocab

    vocab = SubwordVocab.load(DATA / "toy_translation" / "toy.model")
    torch.manual_seed(0)
    config = Seq2SeqConfig(vocab_size=vocab.size, embedding_dim=16, encoder_hidden=16, encoder_layers=2,
                           decoder_hidden=24, decoder_layers=1, dropout=0.0)
    model = Seq2Seq(config).eval()
    with torch.no_grad():  # sharper than the default initialisation: beams with clear winners
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    save_model(directory / name, model, vocab)
    return ModelSpec(name, "gru-seq2seq", path=str(directory / name))
