"""Conformance contracts: test classes a plugin author subclasses to check a backend.

Each contract checks what the host relies on, two ways: the backend object directly
(``make_backend``), and the model served by a real server on a loopback port, called
through ``rnnserve_client``. Say what to test with class attributes::

    class TestMyLM(LanguageModelContract):
        plugin = "my-lm"              # entry-point name (tests the packaging), or the hooks module
        model = "my-lm-small"         # a model the plugin registers through register_models
        sample_text = "Text the vocabulary covers."

or build the model in a temporary directory by overriding ``make_spec(tmp_path)``. The
class-scoped fixtures (``rnnserve_host``, ``rnnserve_spec``, ``rnnserve_config``,
``rnnserve_server``, ``rnnserve_client``, and ``rnnserve_backend`` for language models)
are available to extra tests you add to the subclass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

from rnnserve.backends import LanguageModel, State
from rnnserve.host.model_spec import ModelSpec
from rnnserve.host.plugins import PluginHost
from rnnserve.host.precision import exact_seeds
from rnnserve.ops.config import Limits, ServerConfig
from rnnserve.runtime.state import concat_states, state_row
from rnnserve.testing.hosts import LocalContext, plugin_host
from rnnserve.testing.probe import ProbedLanguageModel
from rnnserve.testing.server import ServerThread, running_server
from rnnserve.testing.waiting import wait_until
from rnnserve_client import Client, errors

SUGGESTION_KINDS = ("word", "next_words", "phrase")


class _Contract:
    """What every contract needs: the plugin under test, one model spec, and a served copy."""

    #: The plugin under test: its entry-point name in the ``rnnserve`` group, or its hooks module.
    plugin: ClassVar[Any] = None
    #: Other plugins the model needs (e.g. the plugin of a language model an assistant borrows).
    supporting_plugins: ClassVar[Sequence[Any]] = ()
    #: The model to test: one the plugin registers through ``register_models`` ...
    model: ClassVar[str | None] = None
    #: ... or a spec given here, or one built by :meth:`make_spec`.
    spec: ClassVar[ModelSpec | None] = None
    #: The served copy's limits (the bad-input tests go past them).
    limits: ClassVar[Limits] = Limits()
    #: Seconds each client call may take.
    timeout: ClassVar[float] = 60.0

    # -- what an author may override ------------------------------------------------------

    def make_spec(self, tmp_path: Path) -> ModelSpec:
        """The model to test, e.g. a tiny checkpoint written into ``tmp_path`` (a class-wide temp dir)."""
        raise TypeError(f"{type(self).__name__}: say which model to test: set `model = 'name'` (a model the "
                        "plugin registers), `spec = ModelSpec(...)`, or override `make_spec(self, tmp_path)`")

    def supporting_models(self, tmp_path: Path) -> Sequence[ModelSpec]:
        """Other models the server must host (e.g. the language model an assistant borrows)."""
        return ()

    def make_host(self) -> PluginHost:
        """The plugins to serve with: ``plugin`` and ``supporting_plugins``, loaded through their hooks."""
        if self.plugin is None:
            raise TypeError(f"{type(self).__name__}: set `plugin` to the plugin under test (its entry-point "
                            "name, e.g. plugin = 'my-lm', or its hooks module)")
        return plugin_host(self.plugin, *self.supporting_plugins)

    def serving_host(self, host: PluginHost, spec: ModelSpec) -> PluginHost:
        """The host the server gets (the language-model contract wraps the model in a probe)."""
        return host

    # -- fixtures (class-scoped: one host, spec and server per test class) --------------------

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_host(cls) -> PluginHost:
        return cls().make_host()

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_workdir(cls, tmp_path_factory: pytest.TempPathFactory) -> Path:
        return tmp_path_factory.mktemp(cls.__name__)

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_spec(cls, rnnserve_host: PluginHost, rnnserve_workdir: Path) -> ModelSpec:
        if cls.spec is not None:
            return cls.spec
        if cls.model is not None:
            shipped = {s.name: s for s in rnnserve_host.models}
            if cls.model not in shipped:
                raise LookupError(f"{cls.__name__}: no plugin registers a model {cls.model!r}; "
                                  f"registered: {sorted(shipped) or 'none'}")
            return shipped[cls.model]
        return cls().make_spec(rnnserve_workdir)

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_config(cls, rnnserve_spec: ModelSpec, rnnserve_workdir: Path) -> ServerConfig:
        models = (*cls().supporting_models(rnnserve_workdir), rnnserve_spec)
        return ServerConfig(default_models=False, models=models, limits=cls.limits)

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_server(cls, rnnserve_config: ServerConfig, rnnserve_host: PluginHost,
                        rnnserve_spec: ModelSpec) -> Iterator[ServerThread]:
        with running_server(rnnserve_config, cls().serving_host(rnnserve_host, rnnserve_spec)) as server:
            for entry in server.app.registry.entries():
                if entry.state != "ready":
                    pytest.fail(f"model {entry.name!r} (backend {entry.spec.backend!r}) did not load: "
                                f"{entry.state} {entry.reason}", pytrace=False)
            yield server

    @pytest.fixture
    def rnnserve_client(self, rnnserve_server: ServerThread) -> Iterator[Client]:
        with Client(rnnserve_server.target, timeout=self.timeout) as client:
            yield client


# -- language models --------------------------------------------------------------------------


class LanguageModelContract(_Contract):
    """What the host relies on from a :class:`rnnserve.backends.LanguageModel`.

    The step contract (``vocab``, ``state_batch_dims``, ``initial_state``, ``forward``,
    optional ``step``) is checked on the backend itself; seeds, batching, cancellation
    and error codes through a real server, which serves the model wrapped in a
    transparent :class:`~rnnserve.testing.probe.ProbedLanguageModel` that counts steps.
    """

    #: Text the vocabulary covers completely (it must round-trip through encode/decode).
    sample_text: ClassVar[str] = "It is a truth universally acknowledged, that a single man in possession of a " \
                                 "good fortune, must be in want of a wife."
    #: A prompt for generation tests.
    prompt: ClassVar[str] = "It is a truth"
    #: Characters outside the vocabulary.
    unknown_text: ClassVar[str] = "\u2603"
    #: Tolerances for comparing logits and states computed two ways.
    atol: ClassVar[float] = 1e-5
    rtol: ClassVar[float] = 1e-4
    #: Tokens generated by the generation tests.
    max_new_tokens: ClassVar[int] = 24

    def make_backend(self, spec: ModelSpec) -> LanguageModel:
        """The backend to test directly; by default built by the plugin's registered factory."""
        host = self.make_host()
        if spec.backend not in host.backends:
            raise LookupError(f"no plugin registers backend {spec.backend!r}; registered: {sorted(host.backends)}")
        factory, _ = host.backends[spec.backend]
        return factory(spec, LocalContext())

    def serving_host(self, host: PluginHost, spec: ModelSpec) -> PluginHost:
        factory, info = host.backends[spec.backend]

        def probed(s: ModelSpec, context: Any) -> Any:
            backend = factory(s, context)
            return ProbedLanguageModel(backend) if s.name == spec.name else backend

        return dataclasses.replace(host, backends={**host.backends, spec.backend: (probed, info)})

    @pytest.fixture(scope="class")
    @classmethod
    def rnnserve_backend(cls, rnnserve_spec: ModelSpec) -> LanguageModel:
        backend = cls().make_backend(rnnserve_spec)  # built like the registry builds it: outside inference mode
        assert isinstance(backend, LanguageModel), \
            f"make_backend returned {type(backend).__name__}, not an rnnserve.backends.LanguageModel"
        return backend

    @pytest.fixture(autouse=True)
    def _inference_mode(self) -> Iterator[None]:
        """Direct backend calls run as the scheduler runs them: under ``torch.inference_mode()``."""
        with torch.inference_mode():
            yield

    # -- helpers ------------------------------------------------------------------------------

    def _probe(self, server: ServerThread, spec: ModelSpec) -> ProbedLanguageModel:
        backend = server.app.registry.find(spec.name).backend
        assert isinstance(backend, ProbedLanguageModel)
        return backend

    def _close(self, actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
        torch.testing.assert_close(actual.float(), expected.float(), atol=self.atol, rtol=self.rtol,
                                   msg=lambda m: f"{what}: {m}")

    def _prefill(self, lm: LanguageModel, text: str) -> tuple[torch.Tensor, State]:
        ids, _ = lm.vocab.encode(text)
        return lm.forward(torch.tensor([[lm.vocab.bos_id, *ids]]), lm.initial_state(1))

    # -- the backend itself -------------------------------------------------------------------

    def test_vocab_round_trips_the_sample_text(self, rnnserve_backend: LanguageModel) -> None:
        vocab = rnnserve_backend.vocab
        ids, unknown = vocab.encode(self.sample_text)
        assert unknown == [], f"sample_text must lie inside the vocabulary; unknown: {unknown}"
        assert ids and all(isinstance(i, int) and 0 <= i < vocab.size for i in ids)
        assert vocab.decode(ids) == self.sample_text
        # The scheduler streams each token's own text: the pieces must add up to the text.
        assert "".join(vocab.decode([i]) for i in ids) == self.sample_text, \
            "decode([id]) of each token must concatenate to decode(ids) (the host streams token by token)"
        assert 0 <= vocab.bos_id < vocab.size
        assert vocab.eos_id is None or 0 <= vocab.eos_id < vocab.size
        assert vocab.decode([vocab.bos_id]) == "", "special tokens decode to ''"

    def test_unknown_characters_are_reported_not_raised(self, rnnserve_backend: LanguageModel,
                                                        rnnserve_client: Client, rnnserve_spec: ModelSpec) -> None:
        vocab = rnnserve_backend.vocab
        text = self.sample_text + self.unknown_text
        ids, unknown = vocab.encode(text)
        assert ids and all(0 <= i < vocab.size for i in ids)
        assert unknown, f"encode({text!r}) reported no unknown characters"
        assert all(u and u in text for u in unknown), f"reported unknowns {unknown} must come from the text"
        assert all(any(ch in u for u in unknown) for ch in self.unknown_text), \
            f"every character of {self.unknown_text!r} must be reported; got {unknown}"
        result = rnnserve_client.generate(rnnserve_spec.name, self.prompt + self.unknown_text, max_new_tokens=2,
                                          temperature=0)
        assert all(any(ch in u for u in result.unknown_characters) for ch in self.unknown_text)

    def test_state_shapes_match_state_batch_dims(self, rnnserve_backend: LanguageModel) -> None:
        lm = rnnserve_backend
        dims = tuple(lm.state_batch_dims)
        assert dims and all(isinstance(d, int) and d >= 0 for d in dims), "state_batch_dims: one int per tensor"
        ids, _ = lm.vocab.encode(self.sample_text[:8])
        for batch in (1, 3):
            state = lm.initial_state(batch)
            assert isinstance(state, tuple) and len(state) == len(dims), \
                f"initial_state must return a tuple of {len(dims)} tensors (one per state_batch_dims entry)"
            shapes = [tuple(t.shape) for t in state]
            for t, d in zip(state, dims, strict=True):
                assert isinstance(t, torch.Tensor) and t.shape[d] == batch, \
                    f"state tensor of shape {tuple(t.shape)} has no batch {batch} at dim {d}"
            tokens = torch.tensor([[lm.vocab.bos_id, *ids]] * batch)
            logits, after = lm.forward(tokens, state)
            assert logits.shape == (batch, tokens.shape[1], lm.vocab.size) and logits.dtype == torch.float32, \
                f"forward: logits must be float32 [batch, time, vocab], got {logits.dtype} {tuple(logits.shape)}"
            assert [tuple(t.shape) for t in after] == shapes, "forward must keep the state's shapes"
            logits, after = lm.step(tokens[:, 0], state)
            assert logits.shape == (batch, lm.vocab.size) and logits.dtype == torch.float32, \
                f"step: logits must be float32 [batch, vocab], got {logits.dtype} {tuple(logits.shape)}"
            assert [tuple(t.shape) for t in after] == shapes, "step must keep the state's shapes"

    def test_prefill_equals_step_by_step(self, rnnserve_backend: LanguageModel) -> None:
        lm = rnnserve_backend
        ids, _ = lm.vocab.encode(self.sample_text)
        tokens = [lm.vocab.bos_id, *ids][:64]
        logits, state = lm.forward(torch.tensor([tokens]), lm.initial_state(1))
        stepped = lm.initial_state(1)
        for t, token in enumerate(tokens):
            row, stepped = lm.step(torch.tensor([token]), stepped)
            self._close(row[0], logits[0, t], f"step logits at position {t} vs forward")
        for i, (a, b) in enumerate(zip(stepped, state, strict=True)):
            self._close(a, b, f"state tensor {i} after stepping vs after forward")

    def test_forward_in_chunks_equals_forward_at_once(self, rnnserve_backend: LanguageModel) -> None:
        lm = rnnserve_backend
        ids, _ = lm.vocab.encode(self.sample_text)
        tokens = torch.tensor([[lm.vocab.bos_id, *ids][:48]])
        cut = tokens.shape[1] // 3
        whole, state = lm.forward(tokens, lm.initial_state(1))
        first, mid = lm.forward(tokens[:, :cut], lm.initial_state(1))
        second, end = lm.forward(tokens[:, cut:], mid)
        self._close(torch.cat([first, second], dim=1), whole, "logits of two chunks vs one block")
        for i, (a, b) in enumerate(zip(end, state, strict=True)):
            self._close(a, b, f"state tensor {i} after two chunks vs one block")

    def test_batched_step_equals_single_steps(self, rnnserve_backend: LanguageModel) -> None:
        lm = rnnserve_backend
        dims = tuple(lm.state_batch_dims)
        words = self.sample_text.split(" ")
        texts = [" ".join(words[:k]) for k in (1, 3, 2, max(4, len(words)))]
        prefilled = [self._prefill(lm, text) for text in texts]
        states = [state for _, state in prefilled]
        tokens = torch.stack([logits[0, -1].argmax() for logits, _ in prefilled])
        batched, batched_state = lm.step(tokens, concat_states(states, dims))
        for i, state in enumerate(states):
            single, single_state = lm.step(tokens[i: i + 1], state)
            self._close(batched[i], single[0], f"row {i} of a batched step vs a single step")
            for k, (a, b) in enumerate(zip(state_row(batched_state, dims, i), single_state, strict=True)):
                self._close(a, b, f"state tensor {k}, row {i} of a batched step vs a single step")

    # -- through a real server ----------------------------------------------------------------

    def test_greedy_generation_matches_the_backend(self, rnnserve_backend: LanguageModel, rnnserve_client: Client,
                                                   rnnserve_spec: ModelSpec) -> None:
        lm = rnnserve_backend
        expected = []
        logits, state = self._prefill(lm, self.prompt)
        row = logits[0, -1]
        for _ in range(self.max_new_tokens):
            token = int(row.argmax())
            if token == lm.vocab.eos_id:
                break
            expected.append(token)
            row, state = lm.step(torch.tensor([token]), state)
            row = row[0]
        result = rnnserve_client.generate(rnnserve_spec.name, self.prompt, max_new_tokens=self.max_new_tokens,
                                          temperature=0)
        assert result.text == "".join(lm.vocab.decode([t]) for t in expected)
        assert result.finish_reason == ("length" if len(expected) == self.max_new_tokens else "end_of_text")

    def test_score_matches_the_backend(self, rnnserve_backend: LanguageModel, rnnserve_client: Client,
                                       rnnserve_spec: ModelSpec) -> None:
        lm = rnnserve_backend
        ids, _ = lm.vocab.encode(self.sample_text)
        tokens = [lm.vocab.bos_id, *ids]
        logits, _ = lm.forward(torch.tensor([tokens[:-1]]), lm.initial_state(1))
        logprobs = torch.log_softmax(logits[0].double(), -1)
        expected = logprobs[torch.arange(len(ids)), torch.tensor(ids)]
        scored = rnnserve_client.score(rnnserve_spec.name, self.sample_text)
        assert len(scored.logprobs) == len(ids)
        assert [lp.logprob for lp in scored.logprobs] == pytest.approx(expected.tolist(), abs=1e-3)
        assert math.isfinite(scored.total_logprob) and scored.bits_per_char >= 0

    def test_seeded_sampling_is_deterministic(self, rnnserve_client: Client, rnnserve_spec: ModelSpec) -> None:
        """Promised in every precision: the same request gives the same samples."""
        name = rnnserve_spec.name
        params = {"max_new_tokens": self.max_new_tokens, "temperature": 1.0}
        alone = [rnnserve_client.generate(name, self.prompt, seed=seed, **params).text for seed in (11, 12, 13)]
        assert [rnnserve_client.generate(name, self.prompt, seed=seed, **params).text
                for seed in (11, 12, 13)] == alone, "the same seed must give the same text"
        forked = rnnserve_client.generate(name, self.prompt, seed=11, n=3, **params)
        assert [c.seed for c in forked.completions] == [11, 12, 13]
        again = rnnserve_client.generate(name, self.prompt, seed=11, n=3, **params)
        assert [c.text for c in again.completions] == [c.text for c in forked.completions], \
            "the same request with n samples must give the same samples"

    def test_seeded_sampling_is_batch_invariant(self, rnnserve_client: Client, rnnserve_server: ServerThread,
                                                rnnserve_spec: ModelSpec) -> None:
        """Promised in float32 only (``rnnserve.host.precision.exact_seeds``): reduced-precision kernels
        round differently for other batch shapes, and how depends on the CPU. Decided by the precision
        the model loaded in (``dtype = "auto"`` is only known then)."""
        loaded = rnnserve_client.get_model(rnnserve_spec.name).precision
        if not exact_seeds(loaded):
            pytest.skip(f"{loaded} promises the same samples for the same request, not for the same seed in "
                        "another batch (exact seeds: float32 only)")
        name = rnnserve_spec.name
        params = {"max_new_tokens": self.max_new_tokens, "temperature": 1.0}
        alone = [rnnserve_client.generate(name, self.prompt, seed=seed, **params).text for seed in (11, 12, 13)]
        forked = rnnserve_client.generate(name, self.prompt, seed=11, n=3, **params)
        assert [c.text for c in forked.completions] == alone, \
            "sample i of a request with seed s must equal a lone request with seed s + i"
        probe = self._probe(rnnserve_server, rnnserve_spec)
        probe.batch_sizes.clear()
        probe.step_delay = 0.002  # keep the requests in flight together
        try:
            with ThreadPoolExecutor(6) as pool:
                crowd = [pool.submit(rnnserve_client.generate, name, self.prompt[: 1 + i], seed=100 + i, **params)
                         for i in range(3)]
                mixed = list(pool.map(lambda s: rnnserve_client.generate(name, self.prompt, seed=s, **params).text,
                                      (11, 12, 13)))
                for future in crowd:
                    future.result()
        finally:
            probe.step_delay = 0.0
        assert mixed == alone, "a seeded sample must not depend on the other sequences in its batch"
        assert max(probe.batch_sizes, default=0) > 1, \
            f"the requests never shared a decoding step: {dict(probe.batch_sizes)}"

    def test_streaming_equals_unary_generation(self, rnnserve_client: Client, rnnserve_spec: ModelSpec) -> None:
        params = {"max_new_tokens": self.max_new_tokens, "temperature": 0.8, "seed": 5}
        unary = rnnserve_client.generate(rnnserve_spec.name, self.prompt, **params)
        chunks = list(rnnserve_client.generate_stream(rnnserve_spec.name, self.prompt, **params))
        assert "".join(c.text for c in chunks) == unary.text
        assert chunks[-1].finish_reason == unary.finish_reason

    def test_cancelled_stream_stops_the_scheduler_steps(self, rnnserve_client: Client, rnnserve_server: ServerThread,
                                                         rnnserve_spec: ModelSpec) -> None:
        probe = self._probe(rnnserve_server, rnnserve_spec)
        stats = rnnserve_server.app.registry.find(rnnserve_spec.name).stats
        longest = self.limits.max_new_tokens
        # Calls left running by an earlier test that failed part-way would keep the model stepping.
        wait_until(lambda: not (stats.active_sequences or stats.queue_depth), 60, "the model to be idle first")
        probe.step_delay, probe.hide_eos = 0.005, True  # at least 10 s of work unless the cancel stops it
        try:
            before = probe.steps
            stream = rnnserve_client.generate_stream(rnnserve_spec.name, self.prompt, max_new_tokens=longest,
                                                     temperature=1.0, seed=3)
            next(stream)
            # The first chunk comes from reading the prompt, before the sequence joins the batch:
            # cancel once it is being stepped, so there is running work for the cancel to stop.
            wait_until(lambda: probe.steps > before, 10, "the stream's sequence to be stepped")
            stream.cancel()
            wait_until(lambda: stats.active_sequences == 0, 10, "the cancelled sequence to leave the batch")
            settled = probe.steps
            assert settled - before < longest, "the generation ran to its end: the cancel was not honoured"
            # Nothing of it is left: a short generation now runs alone, every step of it with batch size 1.
            sizes = probe.batch_sizes.copy()
            rnnserve_client.generate(rnnserve_spec.name, self.prompt, max_new_tokens=3, temperature=0)
            added = probe.batch_sizes - sizes
            assert set(added) == {1} and added[1] == probe.steps - settled, \
                f"the model kept stepping the cancelled sequence: step batch sizes since {dict(added)}"
        finally:
            probe.step_delay, probe.hide_eos = 0.0, False

    def test_bad_inputs_are_rejected_with_the_right_codes(self, rnnserve_client: Client,
                                                          rnnserve_spec: ModelSpec) -> None:
        name = rnnserve_spec.name
        limits = self.limits
        cases = [
            ({"temperature": -1.0}, "temperature"),
            ({"top_p": 0.0}, "top_p"),
            ({"repetition_penalty": 0.0}, "repetition_penalty"),
            ({"max_new_tokens": limits.max_new_tokens + 1}, "max_new_tokens"),
            ({"n": limits.max_n + 1}, "max_n"),
            ({"stop": [""]}, "stop"),
        ]
        for params, needle in cases:
            with pytest.raises(errors.InvalidArgument) as info:
                rnnserve_client.generate(name, self.prompt, **params)
            assert needle in info.value.details, (params, info.value.details)
        with pytest.raises(errors.InvalidArgument, match="max_prompt_chars"):
            rnnserve_client.generate(name, "x" * (limits.max_prompt_chars + 1))
        with pytest.raises(errors.InvalidArgument):
            rnnserve_client.score(name, "")
        with pytest.raises(errors.NotFound) as info:
            rnnserve_client.generate(name + "-no-such-model", self.prompt)
        assert name in info.value.details, "NOT_FOUND lists the models that exist"


# -- translators ------------------------------------------------------------------------------


class TranslatorContract(_Contract):
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


# -- assistants -------------------------------------------------------------------------------


class AssistantContract(_Contract):
    """What the host relies on from a :class:`rnnserve.backends.Assistant`, checked through a real server."""

    #: Text before the cursor, ending inside a word.
    text: ClassVar[str] = "It is a truth universally ackn"
    #: The suggestion kinds the assistant offers.
    kinds: ClassVar[Sequence[str]] = SUGGESTION_KINDS
    max_suggestions: ClassVar[int] = 3
    #: Session edits, applied in order after opening with ``""``: ("append", text), ("delete", n), ("reset",).
    edits: ClassVar[Sequence[tuple[Any, ...]]] = (
        ("append", "It is a tr"), ("append", "uth unix"), ("delete", 1), ("append", "vers"),
        ("reset",), ("append", "She was the youn"),
    )

    def test_suggestions_of_each_kind(self, rnnserve_client: Client, rnnserve_spec: ModelSpec) -> None:
        for kind in self.kinds:
            suggestions = rnnserve_client.suggest(rnnserve_spec.name, self.text, self.max_suggestions, kinds=[kind])
            assert 1 <= len(suggestions) <= self.max_suggestions, f"{kind}: {len(suggestions)} suggestions"
            for s in suggestions:
                assert s.kind == kind and s.text and s.insert_text, s
                assert 0 <= s.replace_chars <= len(self.text), s
                assert 0.0 <= s.absolute_probability <= 1.0 + 1e-6, s  # (a long phrase may underflow to 0)

    def test_probabilities_are_normalised(self, rnnserve_client: Client, rnnserve_spec: ModelSpec) -> None:
        suggestions = rnnserve_client.suggest(rnnserve_spec.name, self.text, self.max_suggestions,
                                              kinds=list(self.kinds))
        assert [s.kind for s in suggestions] == sorted((s.kind for s in suggestions), key=list(self.kinds).index), \
            "suggestions come grouped by kind, in the requested order"
        for kind in self.kinds:
            group = [s for s in suggestions if s.kind == kind]
            assert sum(s.probability for s in group) == pytest.approx(1.0, abs=1e-4), kind
            assert all(0.0 < s.probability <= 1.0 + 1e-6 for s in group), kind
            assert [s.absolute_probability for s in group] == sorted((s.absolute_probability for s in group),
                                                                     reverse=True), f"{kind}: most likely first"

    def test_session_after_edits_equals_a_fresh_suggest(self, rnnserve_client: Client,
                                                       rnnserve_spec: ModelSpec) -> None:
        name, kinds = rnnserve_spec.name, list(self.kinds)
        document = ""
        with rnnserve_client.session(name, kinds, self.max_suggestions) as session:
            for op, *args in self.edits:
                if op == "append":
                    got = session.append(args[0])
                    document += args[0]
                elif op == "delete":
                    got = session.delete(args[0])
                    document = document[: max(0, len(document) - args[0])]
                elif op == "reset":
                    got = session.reset()
                    document = ""
                else:
                    raise ValueError(f"unknown edit {op!r}; use append, delete or reset")
                assert session.document_chars == len(document)
                fresh = rnnserve_client.suggest(name, document, self.max_suggestions, kinds=kinds)
                assert [(s.kind, s.text, s.insert_text, s.replace_chars) for s in got] == \
                    [(s.kind, s.text, s.insert_text, s.replace_chars) for s in fresh], f"after {op} {args}"
                assert [s.absolute_probability for s in got] == \
                    pytest.approx([s.absolute_probability for s in fresh], rel=1e-3, abs=1e-9)

    def test_bad_inputs_are_rejected_with_the_right_codes(self, rnnserve_client: Client,
                                                          rnnserve_spec: ModelSpec) -> None:
        name, limits = rnnserve_spec.name, self.limits
        with pytest.raises(errors.InvalidArgument, match="max_suggestions"):
            rnnserve_client.suggest(name, self.text, limits.max_suggestions + 1)
        with pytest.raises(errors.InvalidArgument, match="max_document_chars"):
            rnnserve_client.suggest(name, "x" * (limits.max_document_chars + 1))
        with pytest.raises(errors.NotFound):
            rnnserve_client.suggest(name + "-no-such-model", self.text)
