"""The language-model scheduler on its own: batched prefill of prompts of different lengths."""

from __future__ import annotations

import asyncio

from rnnserve.sampling import SamplingParams
from rnnserve.scheduler import LanguageModelScheduler, RequestHandle
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
