"""The language-model scheduler on its own: batched prefill of prompts of different lengths, and
handing text over every few steps instead of every step."""

from __future__ import annotations

import asyncio

import pytest

from rnnserve.runtime.generation_requests import Event, FinishReason, RequestHandle
from rnnserve.runtime.language_model_scheduler import LanguageModelScheduler
from rnnserve.runtime.sampling import SamplingParams
from tests.support.toy_plugin import TinyGRULM

PROMPTS = ["the qu", "a", "", "the quick brown fox jumps", "over the", "the qu"]


async def _generate(scheduler: LanguageModelScheduler, prompts: list[str], start: bool) -> list[str]:
    params = SamplingParams(max_new_tokens=12, temperature=0.0)
    handles: list[RequestHandle] = [scheduler.submit(scheduler.vocab.encode(p)[0], params) for p in prompts]
    if start:  # every request is already waiting: the first iteration admits them all together
        scheduler.start()

    async def text(handle: RequestHandle) -> str:
        return "".join(e.text for events in [evs async for evs in handle.events()] for e in events)

    return list(await asyncio.gather(*(text(h) for h in handles)))


def test_prompts_prefilled_together_match_prompts_prefilled_alone() -> None:
    model = TinyGRULM(seed=5)
    together = LanguageModelScheduler("together", model, max_batch_size=64, max_queue=64)
    alone = LanguageModelScheduler("alone", model, max_batch_size=64, max_queue=64)
    alone.start()
    try:
        batched = asyncio.run(_generate(together, PROMPTS, start=True))
        single = [asyncio.run(_generate(alone, [p], start=False))[0] for p in PROMPTS]
    finally:
        together.stop()
        alone.stop()
    assert batched == single
    assert batched[0] == batched[-1]  # equal prompts, equal greedy continuations
    assert together.stats.steps_total < alone.stats.steps_total  # decoded as one batch


async def _events(scheduler: LanguageModelScheduler, prompts: list[str], params: SamplingParams
                  ) -> list[list[Event]]:
    handles = [scheduler.submit(scheduler.vocab.encode(p)[0], params) for p in prompts]
    scheduler.start()

    async def collect(handle: RequestHandle) -> list[Event]:
        return [e async for events in handle.events() for e in events]

    return list(await asyncio.gather(*(collect(h) for h in handles)))


def _run(interval: float, params: SamplingParams) -> tuple[list[list[Event]], LanguageModelScheduler]:
    scheduler = LanguageModelScheduler(f"every-{interval}", TinyGRULM(seed=5), max_batch_size=64, max_queue=64,
                                       emit_interval_s=interval)
    try:
        return asyncio.run(_events(scheduler, PROMPTS, params)), scheduler
    finally:
        scheduler.stop()


def _summary(events: list[Event]) -> list[tuple[str, list[tuple[str, float]], FinishReason | None, int, str]]:
    """Per sample of one request: text, logprobs, finish reason, tokens generated, stop sequence."""
    out = []
    for index in sorted({e.index for e in events}):
        mine = [e for e in events if e.index == index]
        out.append(("".join(e.text for e in mine), [lp for e in mine for lp in e.logprobs], mine[-1].finish_reason,
                    mine[-1].generated_tokens, mine[-1].stop_sequence))
    return out


@pytest.mark.parametrize("params", [
    SamplingParams(max_new_tokens=40, temperature=0.9, seed=3),
    SamplingParams(max_new_tokens=40, temperature=1.2, top_k=5, repetition_penalty=1.8, seed=11, logprobs=True),
    SamplingParams(max_new_tokens=40, temperature=0.0, stop=("zllz", "?t"), logprobs=True),
    SamplingParams(max_new_tokens=40, temperature=1.0, n=3, seed=7),
], ids=["sampled", "penalty-logprobs", "greedy-stops", "n3"])
def test_handing_text_over_every_few_steps_changes_no_output(params: SamplingParams) -> None:
    """Sampling, penalties, logprobs, stop sequences and finish reasons are the same whether each
    step's token is sent at once or the steps of a whole second go out together.

    (Sampled cases have no stop sequences: a row that stopped leaves the batch at the next
    hand-over, and a different batch size may move a float32 logit by 1e-7, enough to flip a
    draw that lands on a boundary. Greedy decoding is the stop-sequence case.)"""
    each_step, _ = _run(0.0, params)
    batched, scheduler = _run(1.0, params)
    assert [_summary(e) for e in batched] == [_summary(e) for e in each_step]
    assert sum(map(len, batched)) < sum(map(len, each_step))  # fewer, larger messages
    assert all(sample[2] is not None for e in batched for sample in _summary(e))
    assert scheduler.stats.active_sequences == 0
    if params.stop:
        # the case is exercised:
        assert any(sample[2] is FinishReason.STOP_SEQUENCE for e in batched for sample in _summary(e))


def _handles(n: int) -> list[RequestHandle]:
    loop = asyncio.new_event_loop()  # never run: the handles only wait in the queue here
    return [RequestHandle(loop, [1, 2], SamplingParams(max_new_tokens=4), 0, lambda: None) for _ in range(n)]


def test_a_burst_reaching_an_idle_scheduler_is_gathered_into_one_prefill(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests arriving less than BURST_GAP_S apart are taken together; the gathering stops
    when the burst does (well before BURST_WAIT_S) or the batch is full. (The window is
    widened here so that a loaded test machine's thread switches stay inside it.)"""
    import threading
    import time

    from rnnserve.runtime import prompt_reading as module

    monkeypatch.setattr(module, "BURST_GAP_S", 0.05)
    monkeypatch.setattr(module, "BURST_WAIT_S", 5.0)
    scheduler = LanguageModelScheduler("burst", TinyGRULM(seed=5), max_batch_size=64, max_queue=64)
    handles = _handles(20)
    scheduler._enqueue(handles[0])
    with scheduler._cv:
        first = scheduler._take_admissible()

    def arrive() -> None:
        for handle in handles[1:]:
            time.sleep(0.005)
            scheduler._enqueue(handle)

    sender = threading.Thread(target=arrive)
    started = time.monotonic()
    sender.start()
    gathered = scheduler._gather_burst(len(first))
    elapsed = time.monotonic() - started
    sender.join()
    assert first + gathered == handles
    assert elapsed < 1.0  # it stopped one gap after the burst, not at BURST_WAIT_S

    time.sleep(module.BURST_GAP_S)  # a lone request: nothing is arriving, no wait
    started = time.monotonic()
    assert scheduler._gather_burst(1) == [] and time.monotonic() - started < module.BURST_GAP_S

    small = LanguageModelScheduler("small", TinyGRULM(seed=5), max_batch_size=4, max_queue=64)
    for handle in _handles(10):
        small._enqueue(handle)
    assert len(small._gather_burst(1)) == 3  # the batch's free rows, no more
