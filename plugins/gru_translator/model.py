"""The GRU sequence-to-sequence model: bidirectional encoder, Luong attention, input-feeding decoder.

Notation for shapes: B batch, S source pieces, T target pieces, E ``embedding_dim``,
H ``encoder_hidden`` (per direction; the memory is 2H wide), D ``decoder_hidden``,
V ``vocab_size``.

* :class:`Encoder`: embeddings → dropout → ``encoder_layers``-layer bidirectional GRU over
  packed sequences (padding never reaches the recurrence) → memory [B, S, 2H] and the
  concatenated final forward/backward states [B, 2H].
* :class:`LuongAttention` (multiplicative, "general"): keys = W_k · memory [B, S, D] are
  computed ONCE per source by :meth:`LuongAttention.keys`; each step scores the decoder
  state against them with one batched dot product, masks padding and softmaxes.
* :class:`Decoder`: ``decoder_layers`` GRU cells fed ``[embedding(y_{t-1}); a_{t-1}]`` (input
  feeding: ``a`` is the previous attentional vector), then ``a_t = tanh(W_c [h_t; c_t])``
  [B, E] and logits = W_out · dropout(a_t) [B, V]. With ``tie_embeddings`` one [V, E] matrix
  is the encoder embedding, the decoder embedding and W_out (the vocabulary is joint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnserve.training import StoredConfig

from .subwords import BOS_ID, PAD_ID


@dataclass
class Seq2SeqConfig(StoredConfig):
    """Architecture hyper-parameters (``config.json`` ``"model"``)."""

    vocab_size: int
    embedding_dim: int = 256
    encoder_hidden: int = 256
    encoder_layers: int = 2
    decoder_hidden: int = 256
    decoder_layers: int = 1
    dropout: float = 0.2
    #: One [V, E] matrix for source embeddings, target embeddings and the output projection.
    tie_embeddings: bool = True


class Encoded(NamedTuple):
    """A batch of encoded sources; rows can be repeated or selected (beam search) with :meth:`select`."""

    memory: torch.Tensor  # [B, S, 2H]
    keys: torch.Tensor  # [B, S, D], the attention keys, computed once
    mask: torch.Tensor  # [B, S] bool, True on real source pieces

    def select(self, index: torch.Tensor) -> Encoded:
        """Rows ``index`` [B'] of every tensor."""
        return Encoded(self.memory.index_select(0, index), self.keys.index_select(0, index),
                       self.mask.index_select(0, index))


class DecoderState(NamedTuple):
    hidden: torch.Tensor  # [decoder_layers, B, D]
    feed: torch.Tensor  # [B, E], the previous attentional vector (input feeding)

    def select(self, index: torch.Tensor) -> DecoderState:
        return DecoderState(self.hidden.index_select(1, index), self.feed.index_select(0, index))


class Encoder(nn.Module):
    """Bidirectional multi-layer GRU over embedded source pieces."""

    def __init__(self, config: Seq2SeqConfig, embedding: nn.Embedding):
        super().__init__()
        self.embedding = embedding
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = nn.GRU(config.embedding_dim, config.encoder_hidden, num_layers=config.encoder_layers,
                          bidirectional=True, batch_first=True,
                          dropout=config.dropout if config.encoder_layers > 1 else 0.0)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src [B, S] int64 (padded with PAD_ID), lengths [B] (>= 1) → memory [B, S, 2H], final [B, 2H]."""
        embedded = self.dropout(self.embedding(src))
        packed = pack_padded_sequence(embedded, lengths.cpu(), batch_first=True, enforce_sorted=False)
        output, final = self.rnn(packed)
        memory, _ = pad_packed_sequence(output, batch_first=True, total_length=src.shape[1])
        return memory, torch.cat([final[-2], final[-1]], dim=-1)  # last layer's forward and backward


class LuongAttention(nn.Module):
    """Multiplicative attention: score(h, m_s) = h · (W_k m_s), with the keys W_k m precomputed."""

    def __init__(self, memory_dim: int, query_dim: int):
        super().__init__()
        self.key = nn.Linear(memory_dim, query_dim, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:
        """memory [B, S, 2H] → keys [B, S, D]; called once per source, not per step."""
        return self.key(memory)

    def forward(self, query: torch.Tensor, encoded: Encoded) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, D] → context [B, 2H] and weights [B, S] float32 (zero on padding, rows sum to 1)."""
        scores = torch.bmm(encoded.keys, query.unsqueeze(2)).squeeze(2)
        weights = torch.softmax(scores.float().masked_fill(~encoded.mask, float("-inf")), dim=-1)
        context = torch.bmm(weights.to(encoded.memory.dtype).unsqueeze(1), encoded.memory).squeeze(1)
        return context, weights


class Decoder(nn.Module):
    """Input-feeding GRU decoder with Luong attention, one step at a time."""

    def __init__(self, config: Seq2SeqConfig, embedding: nn.Embedding):
        super().__init__()
        memory_dim = 2 * config.encoder_hidden
        self.embedding = embedding
        self.dropout = nn.Dropout(config.dropout)
        self.bridge = nn.Linear(memory_dim, config.decoder_layers * config.decoder_hidden)
        self.cells = nn.ModuleList(
            nn.GRUCell(config.embedding_dim * 2 if i == 0 else config.decoder_hidden, config.decoder_hidden)
            for i in range(config.decoder_layers))
        self.attention = LuongAttention(memory_dim, config.decoder_hidden)
        self.combine = nn.Linear(config.decoder_hidden + memory_dim, config.embedding_dim, bias=False)
        self.output = nn.Linear(config.embedding_dim, config.vocab_size)
        if config.tie_embeddings:
            self.output.weight = embedding.weight
        self.layers, self.hidden_size, self.feed_size = config.decoder_layers, config.decoder_hidden, \
            config.embedding_dim

    def initial_state(self, final: torch.Tensor) -> DecoderState:
        """final [B, 2H] (encoder) → hidden [layers, B, D] = tanh(bridge), feed zeros [B, E]."""
        hidden = torch.tanh(self.bridge(final)).view(-1, self.layers, self.hidden_size).transpose(0, 1)
        return DecoderState(hidden.contiguous(), final.new_zeros(final.shape[0], self.feed_size))

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [...] → dropout(embedding) [..., E] (a whole teacher-forced target at once in training)."""
        return self.dropout(self.embedding(tokens))

    def step(self, embedded: torch.Tensor, state: DecoderState, encoded: Encoded
             ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """embedded [B, E] (previous target pieces) → attentional vector [B, E], attention [B, S], new state."""
        x = torch.cat([embedded, state.feed], dim=-1)
        hidden = []
        for i, cell in enumerate(self.cells):
            h = cell(x, state.hidden[i])
            hidden.append(h)
            x = self.dropout(h)
        context, weights = self.attention(hidden[-1], encoded)
        attentional = torch.tanh(self.combine(torch.cat([hidden[-1], context], dim=-1)))
        return attentional, weights, DecoderState(torch.stack(hidden), attentional)

    def logits(self, attentional: torch.Tensor) -> torch.Tensor:
        """attentional [..., E] → logits [..., V]."""
        return self.output(self.dropout(attentional))


class Seq2Seq(nn.Module):
    """Encoder + decoder; ``forward`` is teacher-forced training, the rest serves decoding (see beam.py)."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        source = nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        target = source if config.tie_embeddings else \
            nn.Embedding(config.vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        nn.init.normal_(source.weight, std=config.embedding_dim ** -0.5)
        if target is not source:
            nn.init.normal_(target.weight, std=config.embedding_dim ** -0.5)
        with torch.no_grad():
            source.weight[PAD_ID].zero_()
            target.weight[PAD_ID].zero_()
        self.encoder = Encoder(config, source)
        self.decoder = Decoder(config, target)

    def encode(self, src: torch.Tensor, lengths: torch.Tensor) -> tuple[Encoded, DecoderState]:
        """src [B, S], lengths [B] → the encoded batch (keys computed here, once) and the decoder's start state."""
        memory, final = self.encoder(src, lengths)
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < lengths[:, None]
        encoded = Encoded(memory, self.decoder.attention.keys(memory), mask)
        return encoded, self.decoder.initial_state(final)

    def forward(self, src: torch.Tensor, lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: src [B, S], lengths [B], tgt_in [B, T] (BOS + target[:-1]) → logits [B, T, V]."""
        encoded, state = self.encode(src, lengths)
        outputs = []
        # one embedding lookup for all steps; unbind's backward is one stack, not a zero-fill per step
        for embedded in self.decoder.embed(tgt_in).unbind(1):
            attentional, _, state = self.decoder.step(embedded, state, encoded)
            outputs.append(attentional)
        return self.decoder.logits(torch.stack(outputs, dim=1))

    def start_tokens(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        """[batch] BOS ids, the first decoder input."""
        return torch.full((batch,), BOS_ID, dtype=torch.long, device=device)

    def decode_step(self, tokens: torch.Tensor, state: DecoderState, encoded: Encoded
                    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        """tokens [B] → log-probabilities [B, V] (float32; PAD and BOS are -inf), attention [B, S], new state."""
        attentional, weights, state = self.decoder.step(self.decoder.embed(tokens), state, encoded)
        logits = self.decoder.logits(attentional).float()
        logits[:, PAD_ID] = float("-inf")
        logits[:, BOS_ID] = float("-inf")
        return torch.log_softmax(logits, dim=-1), weights, state

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
