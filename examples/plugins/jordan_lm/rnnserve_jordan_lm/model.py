"""The Jordan network: the hidden layer sees the previous *output*, not the previous hidden state.

    h_t = tanh(W x_t + U y_{t-1} + b)      x_t: the embedding of token t
    y_t = softmax(V h_t + c)               the distribution of token t+1

(An Elman network feeds back h_{t-1} instead.) So the whole recurrent state is y_{t-1}:
one probability vector per sequence, [batch, vocab], zeros before the first token.
Shapes: B batch, T time, V vocabulary, E embedding, H hidden.

Checkpoints are a directory: ``config.json`` (format, model config, training record),
``model.safetensors`` (the weights; no pickle) and ``vocab.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .vocab import WordVocab

FORMAT = "rnnserve-jordan-lm/1"


@dataclass
class JordanConfig:
    vocab_size: int
    embedding_dim: int = 32
    hidden_size: int = 64


class JordanRNN(nn.Module):
    def __init__(self, config: JordanConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.embedding_dim)
        self.W = nn.Linear(config.embedding_dim, config.hidden_size)  # W x_t + b
        self.U = nn.Linear(config.vocab_size, config.hidden_size, bias=False)  # U y_{t-1}
        self.V = nn.Linear(config.hidden_size, config.vocab_size)  # V h_t + c

    def initial_state(self, batch_size: int) -> torch.Tensor:
        """y_0 = 0: [B, V]."""
        return torch.zeros(batch_size, self.config.vocab_size)

    def step(self, tokens: torch.Tensor, y_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B], y_{t-1} [B, V] -> logits [B, V] and y_t = softmax(logits) [B, V]."""
        h = torch.tanh(self.W(self.embedding(tokens)) + self.U(y_prev))
        logits = self.V(h)
        return logits, torch.softmax(logits, dim=-1)

    def forward(self, tokens: torch.Tensor, y_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens [B, T], y [B, V] -> logits [B, T, V] and the y after the last token."""
        outputs = []
        for t in range(tokens.shape[1]):
            logits, y_prev = self.step(tokens[:, t], y_prev)
            outputs.append(logits)
        return torch.stack(outputs, dim=1), y_prev


def save_model(directory: Path, model: JordanRNN, vocab: WordVocab, training: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "model": asdict(model.config), "training": training}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = {name: tensor.contiguous() for name, tensor in model.state_dict().items()}
    save_file(weights, str(directory / "model.safetensors"))
    (directory / "model.safetensors").chmod(0o644)  # safetensors writes it readable by its owner only
    vocab.save(directory / "vocab.json")


def load_model(directory: Path) -> tuple[JordanRNN, WordVocab]:
    """The model (eval mode, no gradients) and its vocabulary."""
    config = json.loads((directory / "config.json").read_text())
    if config.get("format") != FORMAT:
        raise ValueError(f"{directory} is not a jordan-lm model (format {config.get('format')!r})")
    model = JordanRNN(JordanConfig(**config["model"]))
    model.load_state_dict(load_file(str(directory / "model.safetensors")))
    vocab = WordVocab.load(directory / "vocab.json")
    if vocab.size != model.config.vocab_size:
        raise ValueError(f"{directory}: vocab.json has {vocab.size} tokens, the model {model.config.vocab_size}")
    return model.eval().requires_grad_(False), vocab
