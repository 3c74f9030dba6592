"""How a language-model scheduler reads text: the prompts it admits, and the texts it scores.

Reading is what could make one model call long, so it is done in pieces: admitted
prompts are read together, at most ``PREFILL_CHUNK_TOKENS`` tokens per iteration (shared
by the groups being read) between the running batch's steps, and ``Score`` reads its text
that many tokens per job. A burst of requests reaching an idle scheduler is gathered into
one prefill first. Once a group's prompts are read, each state is copied once per sample,
the first tokens are sampled and sent, and the samples join the decoding batch
(:meth:`PromptReading._join`, the scheduler's).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from rnnserve.backends import LanguageModel, State
from rnnserve.runtime.decoding_batch import BatchParams, PrefillRead, Rows
from rnnserve.runtime.generation_requests import FinishReason, RequestHandle, Sample, fail_requests, hand_over
from rnnserve.runtime.model_thread import ModelThread
from rnnserve.runtime.sampling import UniformBank, seen_mask
from rnnserve.runtime.state import concat_states

log = logging.getLogger("rnnserve.scheduler")


@dataclass
class ScoreResult:
    """Per-token log-probabilities of a scored text."""

    tokens: list[tuple[str, float]]

    @property
    def total(self) -> float:
        return sum(lp for _, lp in self.tokens)

    @property
    def nats_per_token(self) -> float:
        return -self.total / len(self.tokens) if self.tokens else 0.0


#: A burst of requests reaching an idle scheduler is gathered into one prefill: admission
#: waits while requests keep arriving less than ``BURST_GAP_S`` apart, for at most
#: ``BURST_WAIT_S`` (a lone request waits one gap).
BURST_GAP_S = 0.0005
BURST_WAIT_S = 0.02

#: Prompt tokens (rows x positions) one model call reads while admitting requests, and
#: tokens one scoring call reads: every model call stays far inside ``step_timeout_s``
#: whatever the request, and other users' steps run between the pieces. On a 2-core machine
#: busy with other jobs, austen-char-lstm-int8 read 2,048 characters in 0.3-0.5 s with one
#: torch thread but 7-27 s with two (threads waiting for each other on oversubscribed
#: cores); 512 keep even that a few seconds.
PREFILL_CHUNK_TOKENS = 512


class PromptReading(ModelThread):
    """The reading half of :class:`~rnnserve.runtime.language_model_scheduler.LanguageModelScheduler`:
    its waiting queue, admission, the prompts being read, and scoring."""

    def __init__(self, name: str, model: LanguageModel, *, max_batch_size: int, max_queue: int) -> None:
        super().__init__(name, max_queue=max_queue)
        self.model = model
        self.vocab = model.vocab
        self.max_batch_size = max_batch_size
        self._token_text = [self.vocab.decode([i]) for i in range(self.vocab.size)]
        self._waiting: deque[RequestHandle] = deque()
        self._last_arrival = 0.0  # time.monotonic() of the newest submit
        #: Groups of admitted requests whose prompts are being read (see PrefillRead), oldest
        #: first, each with when its admission began.
        self._prefilling: list[tuple[list[RequestHandle], PrefillRead, float]] = []
        #: The decoding batch's samples (the scheduler's; their rows count against the batch size).
        self._active: list[Sample] = []

    async def run_job(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the model's thread between two steps (the scheduler's)."""
        raise NotImplementedError

    def _join(self, seqs: list[Sample], rows: Rows) -> None:
        """Add samples whose prompts are read, and their rows, to the decoding batch (the scheduler's)."""
        raise NotImplementedError

    async def score(self, text_ids: list[int], context_ids: list[int]) -> ScoreResult:
        """Log-probability of each token of ``text_ids`` after start-of-text and ``context_ids``:
        read ``PREFILL_CHUNK_TOKENS`` at a time, one job each, so other work runs between them."""
        ids = [self.vocab.bos_id, *context_ids, *text_ids]
        state: State | None = None
        picked: list[float] = []
        for start in range(0, len(ids) - 1, PREFILL_CHUNK_TOKENS):
            stop = min(len(ids) - 1, start + PREFILL_CHUNK_TOKENS)
            logprobs, state = await self.run_job(lambda a=start, b=stop, s=state: self._score_chunk(ids, a, b, s))
            picked += logprobs
        picked = picked[len(context_ids):]
        return ScoreResult([(self._token_text[t], lp) for t, lp in zip(text_ids, picked, strict=True)])

    def _gather_burst(self, rows: int) -> list[RequestHandle]:
        """More waiting requests for an idle scheduler's first prefill (``rows`` rows taken so
        far) while a burst is still arriving (see ``BURST_GAP_S``): 64 clients starting
        together become one prefill of 64 prompts rather than a dozen small ones."""
        more: list[RequestHandle] = []
        deadline = time.monotonic() + BURST_WAIT_S
        while rows < self.max_batch_size and time.monotonic() < deadline:
            if time.monotonic() - self._last_arrival >= BURST_GAP_S:
                break
            time.sleep(BURST_GAP_S / 4)
            with self._cv:
                taken = self._take_admissible(self.max_batch_size - rows)
            more += taken
            rows += sum(h.params.n for h in taken if not h.cancelled)
        return more

    def _take_admissible(self, free: int | None = None) -> list[RequestHandle]:
        """Pop waiting requests that fit in the batch, or in ``free`` rows (called with the lock held)."""
        if free is None:  # the rows of the prompts being read are taken too
            free = self.max_batch_size - len(self._active) - sum(h.params.n for live, reader, _ in self._prefilling
                                                                 for h in reader.waiting(live))
        taken = []
        while self._waiting and (self._waiting[0].cancelled or self._waiting[0].params.n <= free):
            handle = self._waiting.popleft()
            if not handle.cancelled:
                free -= handle.params.n
            taken.append(handle)
        self.stats.queue_depth = len(self._waiting)
        return taken

    def _admit(self, handles: list[RequestHandle]) -> None:
        """Start reading the admitted prompts together (``_read_prompts`` goes on with them);
        cancelled ones finish at once."""
        now = time.perf_counter()
        live = []
        for handle in handles:
            handle.admitted_at = now
            if handle.cancelled:
                self._cancel_unread(handle)
            else:
                live.append(handle)
        if live:
            reader = PrefillRead(self.model, [[self.vocab.bos_id, *h.prompt_ids] for h in live])
            self._prefilling.append((live, reader, now))

    def _cancel_unread(self, handle: RequestHandle) -> None:
        hand_over([(handle, Sample(handle, i, self._token_text, self.vocab.eos_id)
                     .finish(FinishReason.CANCELLED)) for i in range(handle.params.n)])

    def _read_prompts(self) -> None:
        """Read the next ``PREFILL_CHUNK_TOKENS`` of the admitted prompts, shared among the groups
        being read (a short prompt that arrives during a long one's read is not kept waiting
        for all of it)."""
        groups, self._prefilling = self._prefilling, []
        budget = max(1, PREFILL_CHUNK_TOKENS // len(groups))
        for group in groups:
            if not self._read_group(*group, budget):
                self._prefilling.append(group)

    def _read_group(self, live: list[RequestHandle], reader: PrefillRead, now: float, budget: int) -> bool:
        """Read ``budget`` more tokens of a group's prompts; once all are read, fork each into its
        n samples, sample and send their first tokens, and join the batch. Whether it is done."""
        if all(h.cancelled for h in reader.waiting(live)):  # nobody waits for the rest of the read
            for handle in reader.waiting(live):
                self._cancel_unread(handle)
            return True
        dims = self.model.state_batch_dims
        try:
            reader.advance(budget)
            finished = reader.take_finished()
            if not finished:
                return False
            elapsed = time.perf_counter() - now
            seqs, logits, states = [], [], []
            for handle, last, state in ((live[i], last, state) for i, last, state in finished):
                handle.prefill_seconds = elapsed
                n = handle.params.n
                seqs += [Sample(handle, i, self._token_text, self.vocab.eos_id) for i in range(n)]
                logits.append(last.expand(n, -1))
                states.append(tuple(torch.cat([t] * n, dim=d) for t, d in zip(state, dims, strict=True)))
            rows = Rows(
                state=concat_states(states, dims),
                tokens=torch.empty(len(seqs), dtype=torch.long),
                remaining=torch.tensor([s.params.max_new_tokens - 1 for s in seqs]),
                seen=seen_mask([set(s.handle.prompt_ids) for s in seqs], self.vocab.size),
                uniforms=UniformBank.seeded([s.seed for s in seqs]))
            rows.tokens, first_logprobs = rows.sample_tokens(torch.cat(logits), BatchParams.of(seqs))
        except Exception as exc:
            log.exception("model %s failed during prefill", self.name)
            fail_requests(reader.waiting(live), exc)
            return True
        self.stats.tokens_total += len(seqs)
        tokens = rows.tokens.tolist()
        logprobs = first_logprobs.tolist() if first_logprobs is not None else None
        events = [(seq.handle, event) for row, seq in enumerate(seqs)
                  if (event := seq.accept([tokens[row]], [logprobs[row]] if logprobs else None)) is not None]
        hand_over(events)  # first tokens go out at once (time to first token)
        reader.joined.update(i for i, _, _ in finished)
        keep = [i for i, s in enumerate(seqs) if not s.done]
        if keep:
            self._join([seqs[i] for i in keep], rows.select(torch.tensor(keep), dims))
        return reader.done

    def _score_chunk(self, ids: list[int], start: int, stop: int, state: State | None) -> tuple[list[float], State]:
        """Log-probabilities of ``ids[start + 1 : stop + 1]``, reading ``ids[start:stop]`` after
        ``state`` (None: the initial state), and the state after them."""
        inputs = torch.tensor([ids[start:stop]], dtype=torch.long)
        logits, state = self.model.forward(inputs, self.model.initial_state(1) if state is None else state)
        logprobs = torch.log_softmax(logits[0].float(), dim=-1)
        targets = torch.tensor(ids[start + 1: stop + 1])
        return logprobs.gather(1, targets[:, None]).squeeze(1).tolist(), state
