"""The plugin surface: hooks, the backend factory and its options, the LanguageModel contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import rnnserve_plugins.char_lstm.plugin as plugin
from rnnserve.edge.errors import ConfigurationError
from rnnserve.ops.config import ModelSpec
from rnnserve_plugins.char_lstm.backend import CharRNNBackend
from rnnserve_plugins.char_lstm.checkpoint import save_model
from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig
from rnnserve_plugins.char_lstm.vocab import CharVocab
from tests.support.hooks import registered


class Context:
    """The part of the host's LoadContext a char-lstm factory uses."""

    def __init__(self, base: Path):
        self.base = base

    def resolve_path(self, spec: ModelSpec) -> Path:
        return self.base / spec.path


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    vocab = CharVocab.build("It is a truth universally acknowledged.\n")
    model = CharRNN(CharRNNConfig(vocab_size=vocab.size, embedding_dim=8, hidden_size=16, num_layers=2))
    save_model(tmp_path / "tiny", model, vocab)
    return tmp_path


def backends() -> dict:
    return registered(plugin)[0]


def test_hooks_register_backend_commands_and_shipped_model():
    backends_, commands, models = registered(plugin)
    assert list(backends_) == ["char-lstm"]
    assert commands == {("data", "austen"), ("data", "english"), ("train", "char-lstm"), ("eval", "char-lstm")}
    expected = []
    for name, directory in (("austen-char-lstm", plugin.SHIPPED_DIR), ("english-char-lstm", plugin.ENGLISH_DIR)):
        if (directory / "model.safetensors").exists():  # a checkout without a checkpoint serves no such model
            expected += [(name, "char-lstm", str(directory), {"dtype": "auto"}),
                         (f"{name}-int8", "char-lstm", str(directory), {"quantize": True})]
    assert [(m.name, m.backend, m.path, m.options) for m in models] == expected
    assert all(Path(m.path).is_absolute() for m in models)


def test_factory_builds_a_language_model(model_dir):
    backend = backends()["char-lstm"](ModelSpec("tiny", "char-lstm", path="tiny"), Context(model_dir))
    assert isinstance(backend, CharRNNBackend)
    assert backend.state_batch_dims == (1, 1)
    assert backend.parameter_count() == sum(p.numel() for p in CharRNN(backend.config).parameters())
    ids, unknown = backend.vocab.encode("It is ☃")
    assert unknown == ["☃"]
    tokens = torch.tensor([[backend.vocab.bos_id, *ids]] * 3)
    with torch.inference_mode():
        logits, state = backend.forward(tokens, backend.initial_state(3))
        assert logits.shape == (3, tokens.shape[1], backend.vocab.size) and logits.dtype == torch.float32
        assert all(s.shape == (2, 3, 16) for s in state)
        stepped, _ = backend.step(tokens[:, -1], backend.initial_state(3))
        assert stepped.shape == (3, backend.vocab.size)


def test_options_are_validated(model_dir):
    factory = backends()["char-lstm"]
    with pytest.raises(ConfigurationError, match="unknown char-lstm option"):
        factory(ModelSpec("tiny", "char-lstm", path="tiny", options={"quantise": True}), Context(model_dir))
    with pytest.raises(ConfigurationError, match="must be bool"):
        factory(ModelSpec("tiny", "char-lstm", path="tiny", options={"quantize": "yes"}), Context(model_dir))
    with pytest.raises(ConfigurationError, match="'dtype' must be one of"):
        factory(ModelSpec("tiny", "char-lstm", path="tiny", options={"dtype": "float16"}), Context(model_dir))
    with pytest.raises(ConfigurationError, match="drop 'dtype'"):
        factory(ModelSpec("tiny", "char-lstm", path="tiny", options={"quantize": True, "dtype": "bfloat16"}),
                Context(model_dir))
    with pytest.raises(ConfigurationError, match="cannot load"):
        factory(ModelSpec("missing", "char-lstm", path="nowhere"), Context(model_dir))


def test_quantized_backend_stays_close_and_consistent(model_dir):
    factory = backends()["char-lstm"]
    exact = factory(ModelSpec("tiny", "char-lstm", path="tiny"), Context(model_dir))
    quantized = factory(ModelSpec("tiny", "char-lstm", path="tiny", options={"quantize": True}), Context(model_dir))
    tokens = torch.randint(0, exact.vocab.size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want, _ = exact.forward(tokens, exact.initial_state(2))
        got, _ = quantized.forward(tokens, quantized.initial_state(2))
        state = quantized.initial_state(2)
        stepped = []
        for t in range(tokens.shape[1]):
            out, state = quantized.step(tokens[:, t], state)
            stepped.append(out)
    torch.testing.assert_close(got, want, atol=0.05, rtol=0.05)
    torch.testing.assert_close(torch.stack(stepped, 1), want, atol=0.05, rtol=0.05)


def test_bfloat16_backend_stays_close_and_its_step_matches_its_forward(model_dir):
    factory = backends()["char-lstm"]
    exact = factory(ModelSpec("tiny", "char-lstm", path="tiny"), Context(model_dir))
    half = factory(ModelSpec("tiny", "char-lstm", path="tiny", options={"dtype": "bfloat16"}), Context(model_dir))
    tokens = torch.randint(0, exact.vocab.size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want, _ = exact.forward(tokens, exact.initial_state(2))
        state = half.initial_state(2)
        assert all(s.dtype == torch.bfloat16 for s in state)
        got, _ = half.forward(tokens, state)
        stepped = []
        for t in range(tokens.shape[1]):
            out, state = half.step(tokens[:, t], state)
            stepped.append(out)
    torch.testing.assert_close(got.float(), want, atol=0.05, rtol=0.05)
    torch.testing.assert_close(torch.stack(stepped, 1).float(), want, atol=0.05, rtol=0.05)


def test_naive_step_option_matches_the_fused_step(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The benchmarks' baseline decodes through nn.LSTM per character: same numbers, slower path."""
    import torch

    from rnnserve_plugins.char_lstm.backend import CharRNNBackend
    from rnnserve_plugins.char_lstm.checkpoint import save_model
    from rnnserve_plugins.char_lstm.model import CharRNN, CharRNNConfig
    from rnnserve_plugins.char_lstm.vocab import CharVocab

    vocab = CharVocab.build("abc def.")
    torch.manual_seed(0)
    save_model(tmp_path, CharRNN(CharRNNConfig(vocab_size=vocab.size, hidden_size=16, embedding_dim=8)), vocab)
    fused, naive = CharRNNBackend.load(tmp_path), CharRNNBackend.load(tmp_path, naive_step=True)
    with torch.inference_mode():
        tokens = torch.tensor([2, 3, 4])
        a, state_a = fused.step(tokens, fused.initial_state(3))
        b, state_b = naive.step(tokens, naive.initial_state(3))
    assert torch.allclose(a, b, atol=1e-5)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(state_a, state_b, strict=True))


def test_two_shipped_assistants_one_per_language_model():
    """writing-assistant reads with the modern model when it is shipped (Austen's otherwise);
    austen-writing-assistant always with Austen's. Each card names its language model."""
    import rnnserve_plugins.writing_assistant.plugin as assistants

    backends_, _, models = registered(assistants)
    assert list(backends_) == ["writing-assistant"]
    by_name = {m.name: m for m in models}
    assert list(by_name) == ["writing-assistant", "austen-writing-assistant"]
    modern = "english-char-lstm-int8" if (plugin.ENGLISH_DIR / "model.safetensors").exists() \
        else "austen-char-lstm-int8"
    assert by_name["writing-assistant"].options == {"language_model": modern}
    assert by_name["austen-writing-assistant"].options == {"language_model": "austen-char-lstm-int8",
                                                           "lexicon_words": 200_000}
    assert modern in by_name["writing-assistant"].card.description
    assert "Austen" in by_name["austen-writing-assistant"].card.limitations


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "peephole-lstm"])
def test_reads_through_the_fused_step_match_the_whole_sequence_kernel(cell: str) -> None:
    """Short blocks, and int8 blocks of many rows, are read position by position by the fused step
    (faster there); what they compute is what the whole-sequence kernel computes."""
    from rnnserve_plugins.char_lstm import backend as module

    torch.manual_seed(3)
    model = CharRNN(CharRNNConfig(vocab_size=9, cell=cell, embedding_dim=6, hidden_size=16, num_layers=2,
                                  dropout=0.0)).eval()
    exact = CharRNNBackend(model, CharVocab.build("abcdefg"))
    quantized = CharRNNBackend(model, CharVocab.build("abcdefg"), quantized=True)
    with torch.inference_mode():
        for rows, chars in ((1, 1), (3, module.LOOP_MAX_CHARS), (module.INT8_LOOP_MIN_ROWS, 20)):
            tokens = torch.randint(2, 9, (rows, chars))
            state = tuple(torch.randn_like(s) for s in model.initial_state(rows))
            want, want_state = model(tokens, state)
            for backend, tolerance in ((exact, 1e-5), (quantized, 0.1)):
                got, got_state = backend.forward(tokens, state)
                torch.testing.assert_close(got, want, atol=tolerance, rtol=0)
                for g, w in zip(got_state, want_state, strict=True):
                    torch.testing.assert_close(g, w, atol=tolerance, rtol=0)
            loop, _ = quantized._step.read(tokens, state)  # the int8 rows-many block took this path
            if rows >= module.INT8_LOOP_MIN_ROWS:
                torch.testing.assert_close(quantized.forward(tokens, state)[0], loop.float())
