"""The translator's scheduler: :class:`TranslationScheduler` batches texts from concurrent
calls that share decoding options into one ``Translator.translate`` call (up to
``max_batch_texts`` texts). A :class:`~rnnserve.runtime.model_thread.ModelThread` (one per model,
bounded queue).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass

from rnnserve.backends import TranslateOptions, TranslationResult, Translator
from rnnserve.edge.errors import RnnserveError
from rnnserve.runtime.model_thread import ModelThread, settle

log = logging.getLogger("rnnserve.translation_scheduler")


@dataclass
class _TranslationJob:
    texts: list[str]
    options: TranslateOptions
    #: Sentences the texts decode as (``Translator.sentences``): what the batch budget counts.
    units: int
    future: Future[list[TranslationResult]]


class TranslationScheduler(ModelThread):
    """Batches translate calls with equal options into one backend call."""

    thread_prefix = "translator"

    def __init__(self, name: str, model: Translator, *, max_batch_texts: int, max_queue: int,
                 max_beams: int | None = None) -> None:
        super().__init__(name, max_queue=max_queue)
        self.model = model
        self.max_batch_texts = max_batch_texts
        #: Sentences x beam_size of one backend call: a merged batch stays within what one request may ask.
        self.max_beams = max_beams
        self._jobs: deque[_TranslationJob] = deque()

    async def translate(self, texts: list[str], options: TranslateOptions,
                        units: int | None = None) -> list[TranslationResult]:
        """Translate ``texts`` (``units`` sentences in all; default one per text), batched with other
        waiting calls that use the same options."""
        job = _TranslationJob(texts, options, len(texts) if units is None else units, Future())
        self._push(self._jobs, job)
        try:
            return await asyncio.wrap_future(job.future)
        finally:
            job.future.cancel()  # no-op once done; drops the job if it has not started

    def _has_work(self) -> bool:
        return bool(self._jobs)

    def _abandon_queued(self, exc: RnnserveError) -> None:
        with self._cv:
            jobs, self._jobs = list(self._jobs), deque()
        self._fail_work(jobs, exc)

    def _fail_work(self, work: list[_TranslationJob], exc: RnnserveError) -> None:
        for job in work:
            settle(job.future, exc=exc)

    def _take(self) -> list[_TranslationJob]:
        """The first waiting job plus later ones with equal options, up to the sentence budget."""
        head = self._jobs.popleft()
        batch, size, rest = [head], head.units, deque()
        while self._jobs:
            job = self._jobs.popleft()
            if job.options == head.options and size + job.units <= self.max_batch_texts and (
                    self.max_beams is None or (size + job.units) * head.options.beam_size <= self.max_beams):
                batch.append(job)
                size += job.units
            else:
                rest.append(job)
        self._jobs = rest
        self.stats.queue_depth = len(self._jobs)
        return [j for j in batch if j.future.set_running_or_notify_cancel()]

    def _process(self, batch: list[_TranslationJob]) -> None:
        if not batch:
            return
        texts = [t for job in batch for t in job.texts]
        try:
            with self._model_call():
                results = self.model.translate(texts, batch[0].options)
        except Exception as exc:
            log.exception("model %s failed translating a batch of %d texts", self.name, len(texts))
            for job in batch:
                job.future.set_exception(exc)
            return
        self.stats.steps_total += 1
        self.stats.batch_rows_total += len(texts)
        self.stats.tokens_total += len(texts)
        start = 0
        for job in batch:
            job.future.set_result(results[start : start + len(job.texts)])
            start += len(job.texts)
