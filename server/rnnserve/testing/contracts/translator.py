"""The translator contract: ordering, n-best, batching, attention and error codes, through a real server."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import ClassVar

import pytest

from rnnserve.host.model_spec import ModelSpec
from rnnserve.testing.contracts.base import Contract
from rnnserve_client import Client, errors


class TranslatorContract(Contract):
    """What the host relies on from a :class:`rnnserve.backends.Translator`, checked through a real server."""

    #: Source texts (at least two, of different lengths).
    texts: ClassVar[Sequence[str]] = ("Good morning.", "Where is the station?", "The weather is fine today.")
    beam_size: ClassVar[int] = 4
    n_best: ClassVar[int] = 3

    def test_one_result_per_text_in_order(self, rnnserve_client: Client, rnnserve_spec: ModelSpec) -> None:
        results = rnnserve_client.translate(rnnserve_spec.name, list(self.texts))
        assert len(results) == len(self.texts)
        for result in results:
            assert len(result.hypotheses) == 1 and isinstance(result.text, str)
            assert result.hypotheses[0].attention is None, "attention only when asked for"

    def test_n_best_is_ordered_by_score(self, rnnserve_client: Client, rnnserve_spec: ModelSpec) -> None:
        results = rnnserve_client.translate(rnnserve_spec.name, list(self.texts), beam_size=self.beam_size,
                                            n_best=self.n_best)
        for text, result in zip(self.texts, results, strict=True):
            scores = [h.score for h in result.hypotheses]
            assert 1 <= len(scores) <= self.n_best, (text, scores)
            assert scores == sorted(scores, reverse=True), f"n-best of {text!r} not best first: {scores}"
            assert all(math.isfinite(s) for s in scores)
            assert all(h.log_probability <= 1e-6 for h in result.hypotheses)

    def test_batched_equals_one_at_a_time(self, rnnserve_client: Client, rnnserve_spec: ModelSpec) -> None:
        options = {"beam_size": self.beam_size, "n_best": 2}
        batched = rnnserve_client.translate(rnnserve_spec.name, list(self.texts), **options)
        for text, together in zip(self.texts, batched, strict=True):
            alone = rnnserve_client.translate(rnnserve_spec.name, [text], **options)[0]
            assert [h.text for h in together.hypotheses] == [h.text for h in alone.hypotheses], text
            assert [h.score for h in together.hypotheses] == pytest.approx([h.score for h in alone.hypotheses],
                                                                           abs=1e-4)

    def test_attention_rows_sum_to_one_when_requested(self, rnnserve_client: Client,
                                                      rnnserve_spec: ModelSpec) -> None:
        results = rnnserve_client.translate(rnnserve_spec.name, list(self.texts), beam_size=self.beam_size,
                                            n_best=2, return_attention=True)
        for result in results:
            for hyp in result.hypotheses:
                assert hyp.attention is not None, "return_attention=True must return attention"
                assert len(hyp.attention) == len(hyp.attention_target_tokens)
                for row in hyp.attention:
                    assert len(row) == len(hyp.attention_source_tokens)
                    assert sum(row) == pytest.approx(1.0, abs=1e-3), f"attention row sums to {sum(row)}"
                    assert all(w >= -1e-6 for w in row)

    def test_bad_inputs_are_rejected_with_the_right_codes(self, rnnserve_client: Client,
                                                          rnnserve_spec: ModelSpec) -> None:
        name, limits = rnnserve_spec.name, self.limits
        text = self.texts[0]
        with pytest.raises(errors.InvalidArgument, match="n_best"):
            rnnserve_client.translate(name, [text], beam_size=2, n_best=3)
        with pytest.raises(errors.InvalidArgument, match="max_beam_size"):
            rnnserve_client.translate(name, [text], beam_size=limits.max_beam_size + 1)
        with pytest.raises(errors.InvalidArgument, match="max_texts_per_call"):
            rnnserve_client.translate(name, [text] * (limits.max_texts_per_call + 1))
        with pytest.raises(errors.InvalidArgument, match="max_text_chars"):
            rnnserve_client.translate(name, ["x" * (limits.max_text_chars + 1)])
        with pytest.raises(errors.InvalidArgument):
            rnnserve_client.translate(name, [])
        with pytest.raises(errors.NotFound):
            rnnserve_client.translate(name + "-no-such-model", [text])
