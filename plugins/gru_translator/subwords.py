"""Subword vocabulary: one joint SentencePiece model for English and German.

Joint rather than separate vocabularies: both sides share one unigram model (size chosen
by measurement, see :func:`measure_vocab_sizes`) trained on the concatenated training
split, so names, numbers and cognates (``Israel``, ``Jerusalem``,
``international``) are the same pieces on both sides, and the encoder embedding, decoder
embedding and output projection can all be one tied matrix — a third of the parameters of
three separate tables, which matters for a model that must stay under 25 MB.

Ids: ``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2 (decoder start), ``</s>`` 3 (end of sentence).
Detokenisation (``decode``) is SentencePiece's own, so output is plain text.
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_FILE = "sentencepiece.model"
MEASUREMENTS_FILE = "subword_sizes.json"
DEFAULT_VOCAB_SIZE = 16000


class SubwordVocab:
    """A loaded SentencePiece model with this package's special ids."""

    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self._sp = spm.SentencePieceProcessor(model_proto=model_proto)
        special = (self._sp.pad_id(), self._sp.unk_id(), self._sp.bos_id(), self._sp.eos_id())
        if special != (PAD_ID, UNK_ID, BOS_ID, EOS_ID):
            raise ValueError(f"sentencepiece model has special ids {special}, expected "
                             f"{(PAD_ID, UNK_ID, BOS_ID, EOS_ID)} (pad, unk, bos, eos)")

    @classmethod
    def load(cls, path: Path) -> SubwordVocab:
        return cls(Path(path).read_bytes())

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.model_proto)

    @property
    def size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Piece ids of ``text`` (no bos/eos)."""
        return self._sp.encode(text, out_type=int)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self._sp.encode(list(texts), out_type=int)

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self._sp.id_to_piece(int(i)) for i in ids]

    def decode(self, ids: Sequence[int]) -> str:
        """Plain text of piece ids; special ids decode to nothing."""
        return self._sp.decode([int(i) for i in ids if int(i) > EOS_ID])


def train_sentencepiece(texts: Iterable[str], out: Path, vocab_size: int = DEFAULT_VOCAB_SIZE,
                        model_type: str = "unigram", seed: int = 1234, normalization: str = "nmt_nfkc",
                        user_defined_symbols: Sequence[str] = ()) -> SubwordVocab:
    """Train a joint model on ``texts`` (one sentence each) and write it to ``out``.

    ``character_coverage`` 1.0 keeps every German letter; the special ids are fixed as above;
    ``seed`` fixes SentencePiece's sampling, so the same corpus gives the same model;
    ``normalization`` "identity" leaves out the NFKC tables (a 240 kB smaller model, for tests);
    ``user_defined_symbols`` are always one piece each (the protected-span masks).
    """
    proto = io.BytesIO()
    spm.set_random_generator_seed(seed)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=proto, vocab_size=vocab_size, model_type=model_type,
        character_coverage=1.0, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=BOS_ID, eos_id=EOS_ID,
        shuffle_input_sentence=True, num_threads=2, normalization_rule_name=normalization, minloglevel=2,
        user_defined_symbols=list(user_defined_symbols))
    vocab = SubwordVocab(proto.getvalue())
    vocab.save(out)
    return vocab


def train_joint(english: list[str], german: list[str], out: Path, vocab_size: int = DEFAULT_VOCAB_SIZE,
                model_type: str = "unigram") -> SubwordVocab:
    """The translator's joint model: trained on both sides of the pairs with their protected spans
    masked as training sees them (:func:`.protect.mask_pairs`), the masks one piece each."""
    from .protect import MASK_TOKENS, mask_pairs

    masked_en, masked_de = mask_pairs(english, german)
    return train_sentencepiece(masked_en + masked_de, out, vocab_size, model_type, user_defined_symbols=MASK_TOKENS)


def measure_vocab_sizes(data_dir: Path, sizes: Sequence[int], model_type: str = "unigram") -> list[dict]:
    """For each vocabulary size, the translator's joint model (:func:`train_joint`) trained on ``data_dir``'s
    ``train`` split and measured on the ``dev.<domain>`` splits, masked as training masks them: training
    seconds, mean pieces per sentence and unknown pieces per 10,000 per side.

    ``character_coverage`` is 1.0, so an unknown piece is a character that training never saw.
    """
    from .corpus.sources import DOMAINS
    from .data import read_parallel
    from .protect import mask_pairs

    en, de = read_parallel(data_dir, "train")
    dev = {domain: mask_pairs(*read_parallel(data_dir, f"dev.{domain}")) for domain in DOMAINS}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            start = time.perf_counter()
            vocab = train_joint(en, de, Path(tmp) / MODEL_FILE, size, model_type)
            row: dict = {"vocab_size": size, "train_seconds": round(time.perf_counter() - start, 1)}
            for domain, sides in dev.items():
                for lang, texts in zip(("en", "de"), sides, strict=True):
                    ids = vocab.encode_batch(texts)
                    pieces = sum(len(i) for i in ids)
                    row[f"{domain}_{lang}_pieces_per_sentence"] = round(pieces / max(1, len(ids)), 2)
                    row[f"{domain}_{lang}_unk_per_10k_pieces"] = round(
                        1e4 * sum(i.count(UNK_ID) for i in ids) / max(1, pieces), 2)
            rows.append(row)
    return rows
