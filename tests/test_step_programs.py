"""Step programs: searches lent a language model's thread, their steps batched together."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
import torch

from rnnserve.runtime.assistant_worker import SerialWorker
from rnnserve.runtime.language_model_scheduler import LanguageModelScheduler
from rnnserve.runtime.model_thread import SchedulerStats
from rnnserve.runtime.step_batcher import StepBatcher
from rnnserve.runtime.step_programs import StepProgram, run_alone, while_true
from rnnserve.testing.waiting import wait_until, wait_until_async
from tests.support.toy_plugin import TinyGRULM


def greedy_walk(model: TinyGRULM, rows: int, steps: int, first: int) -> StepProgram[list[list[int]]]:
    """``rows`` greedy continuations of tokens first, first + 1, ...: one request per step."""
    tokens = (torch.arange(rows) + first) % model.vocab.size
    state = model.initial_state(rows)
    out = []
    for _ in range(steps):
        logits, state = yield tokens, state
        tokens = logits.argmax(-1)
        out.append(tokens.tolist())
    return out


def failing_walk(model: TinyGRULM) -> StepProgram[None]:
    yield torch.zeros(1, dtype=torch.long), model.initial_state(1)
    raise RuntimeError("the program's own bug")


def malformed_walk(model: TinyGRULM) -> StepProgram[None]:
    yield torch.zeros(2, dtype=torch.long), model.initial_state(3)  # 2 tokens, 3 state rows


def shapeless_walk(model: TinyGRULM) -> StepProgram[None]:
    yield torch.tensor(0), model.initial_state(1)  # a 0-d tensor: no rows to batch


def _run_together(scheduler: LanguageModelScheduler, makers: list[Any]) -> list[Any]:
    """Queue every program before the scheduler starts, so they run side by side."""
    with ThreadPoolExecutor(len(makers)) as pool:
        futures = [pool.submit(scheduler.run_steps, make) for make in makers]
        wait_until(lambda: len(scheduler._programs) == len(makers), 10, "every program to be queued")
        scheduler.start()
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(timeout=30))
            except Exception as exc:
                outcomes.append(exc)
    return outcomes


def test_programs_running_together_share_steps_and_match_running_alone() -> None:
    model = TinyGRULM(seed=7)
    shapes = [(3, 5, 0), (1, 9, 4), (8, 2, 1), (2, 7, 6)]  # rows, steps, first token
    scheduler = LanguageModelScheduler("lent", model, max_batch_size=64, max_queue=64)
    try:
        together = _run_together(scheduler, [lambda s=s: greedy_walk(model, *s) for s in shapes])
    finally:
        scheduler.stop()
    with torch.inference_mode():
        alone = [run_alone(model, greedy_walk(model, *s)) for s in shapes]
    assert together == alone
    stats = scheduler.stats
    assert stats.lent_steps_total == max(steps for _, steps, _ in shapes)  # one batched step per round
    assert stats.lent_rows_total == sum(rows * steps for rows, steps, _ in shapes)


def test_batches_are_capped_at_the_schedulers_batch_size() -> None:
    model = TinyGRULM(seed=7)
    scheduler = LanguageModelScheduler("capped", model, max_batch_size=4, max_queue=64)
    try:
        together = _run_together(scheduler, [lambda: greedy_walk(model, 3, 2, 0), lambda: greedy_walk(model, 3, 2, 1)])
    finally:
        scheduler.stop()
    with torch.inference_mode():
        assert together == [run_alone(model, greedy_walk(model, 3, 2, i)) for i in (0, 1)]
    assert scheduler.stats.lent_steps_total == 4  # 3 + 3 rows do not fit in one step of 4


def test_a_failing_program_or_malformed_request_fails_alone() -> None:
    model = TinyGRULM(seed=7)
    scheduler = LanguageModelScheduler("faults", model, max_batch_size=64, max_queue=64)
    try:
        outcomes = _run_together(scheduler, [lambda: greedy_walk(model, 2, 4, 0), lambda: failing_walk(model),
                                             lambda: malformed_walk(model), lambda: greedy_walk(model, 1, 3, 5),
                                             lambda: shapeless_walk(model)])
        assert scheduler.call(lambda: 42) == 42  # the scheduler's thread lives on
    finally:
        scheduler.stop()
    with torch.inference_mode():
        assert outcomes[0] == run_alone(model, greedy_walk(model, 2, 4, 0))
        assert outcomes[3] == run_alone(model, greedy_walk(model, 1, 3, 5))
    assert isinstance(outcomes[1], RuntimeError) and "own bug" in str(outcomes[1])
    assert isinstance(outcomes[2], RuntimeError)  # the GRU refuses 2 tokens with 3 state rows
    assert isinstance(outcomes[4], TypeError) and "must yield (tokens [rows] int64, state)" in str(outcomes[4])


def test_run_steps_on_the_schedulers_own_thread_runs_the_program_inline() -> None:
    model = TinyGRULM(seed=7)
    scheduler = LanguageModelScheduler("inline", model, max_batch_size=64, max_queue=64)
    scheduler.start()
    try:
        nested = scheduler.call(lambda: scheduler.run_steps(lambda: greedy_walk(model, 2, 3, 0)))
    finally:
        scheduler.stop()
    with torch.inference_mode():
        assert nested == run_alone(model, greedy_walk(model, 2, 3, 0))


def test_a_worker_with_threads_runs_that_many_calls_at_once() -> None:
    worker = SerialWorker("pool", max_queue=16, threads=3)
    worker.start()
    barrier = threading.Barrier(3, timeout=10)
    started: list[float | None] = []

    def job() -> int:
        barrier.wait()  # passes only when three calls run at once
        started.append(worker.step_started_at)
        barrier.wait()
        return threading.get_ident()

    async def main() -> list[int]:
        return list(await asyncio.gather(*(worker.run(job) for _ in range(3))))

    try:
        idents = asyncio.run(main())
    finally:
        worker.stop()
    assert len(set(idents)) == 3
    assert all(s is not None for s in started) and worker.step_started_at is None


def test_a_worker_with_one_thread_runs_one_call_at_a_time() -> None:
    worker = SerialWorker("serial", max_queue=16)
    worker.start()
    running, most = [0], [0]
    lock = threading.Lock()

    def job() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)  # the job itself: long enough for a second thread to overlap it, if there were one
        with lock:
            running[0] -= 1

    async def main() -> None:
        await asyncio.gather(*(worker.run(job) for _ in range(5)))

    try:
        asyncio.run(main())
    finally:
        worker.stop()
    assert most[0] == 1


def _logged(tag: str, log: list[str], program: StepProgram[Any]) -> StepProgram[Any]:
    """``program``, appending ``tag`` to ``log`` at each step it gets back."""
    try:
        request = next(program)
        while True:
            result = yield request
            log.append(tag)
            request = program.send(result)
    except StopIteration as done:
        return done.value


def test_idle_programs_run_when_the_model_has_nothing_else_to_do() -> None:
    """Programs lent with ``run_steps_idle`` get no step while other programs wait for one, and
    give what they give alone."""
    model = TinyGRULM(seed=7)
    scheduler = LanguageModelScheduler("idle", model, max_batch_size=64, max_queue=64)
    log: list[str] = []
    idle = [scheduler.run_steps_idle(lambda i=i: _logged("idle", log, greedy_walk(model, 2, 3, i))) for i in range(3)]
    try:
        busy = _run_together(scheduler, [lambda i=i: _logged("busy", log, greedy_walk(model, 1, 6, i))
                                         for i in range(2)])
        idle_results = [future.result(timeout=30) for future in idle]
    finally:
        scheduler.stop()
    with torch.inference_mode():
        assert busy == [run_alone(model, greedy_walk(model, 1, 6, i)) for i in range(2)]
        assert idle_results == [run_alone(model, greedy_walk(model, 2, 3, i)) for i in range(3)]
    assert log == ["busy"] * 12 + ["idle"] * 9


def test_idle_programs_beyond_the_cap_are_dropped_oldest_first() -> None:
    model = TinyGRULM(seed=7)
    batcher = StepBatcher(model, SchedulerStats(), max_rows=64, max_idle=2)
    futures: list[Future[Any]] = [Future() for _ in range(3)]
    with torch.inference_mode():
        for i, future in enumerate(futures):
            batcher.add_idle(lambda i=i: greedy_walk(model, 1, 2, i), future)
        assert futures[0].result(timeout=0) is None  # dropped before it started
        batcher.round()  # not an idle round: nothing runs
        assert not futures[1].done()
        while len(batcher):
            batcher.round(idle=True)
        assert [f.result(timeout=0) for f in futures[1:]] == [run_alone(model, greedy_walk(model, 1, 2, i))
                                                             for i in (1, 2)]


def test_while_true_stops_a_program_before_it_sees_another_step() -> None:
    model = TinyGRULM(seed=7)
    steps: list[int] = []
    closed: list[bool] = []

    def counting() -> StepProgram[str]:
        try:
            tokens, state = torch.zeros(1, dtype=torch.long), model.initial_state(1)
            for i in range(5):
                _, state = yield tokens, state
                steps.append(i)
            return "finished"
        finally:
            closed.append(True)

    with torch.inference_mode():
        assert run_alone(model, while_true(lambda: True, counting())) == "finished"
        steps.clear()
        assert run_alone(model, while_true(lambda: len(steps) < 2, counting())) is None
    assert steps == [0, 1] and closed == [True, True]


class _BuggyThread(SerialWorker):
    """A worker whose own code (not a job's) raises on its second unit of work."""

    def _process(self, work: Any) -> None:
        if self.stats.steps_total == 1:
            raise RuntimeError("a scheduler bug")
        super()._process(work)


def test_a_model_thread_that_dies_fails_what_waits_reports_and_refuses_more() -> None:
    """Before: the thread ended silently, the model stayed READY and every later call waited
    forever. Now the queued work fails, ``on_crash`` reports the error (the registry marks the
    model FAILED) and new work is refused at once."""
    from rnnserve.edge.errors import ModelFailed

    worker = _BuggyThread("buggy", max_queue=8)
    crashes: list[BaseException] = []
    worker.on_crash = crashes.append
    started, release = threading.Event(), threading.Event()

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(worker.run(lambda: started.set() or (release.wait(10) and "first")))
        await wait_until_async(started.is_set, 10, "the first job to run")
        waiting = [asyncio.ensure_future(worker.run(lambda: "never")) for _ in range(2)]
        await wait_until_async(lambda: worker.stats.queue_depth == 2, 10, "the next two jobs to queue behind it")
        release.set()
        return await asyncio.gather(first, *waiting, return_exceptions=True)

    worker.start()
    try:
        first, *waiting = asyncio.run(asyncio.wait_for(scenario(), 20))
    finally:
        worker.stop()
    assert first == "first"
    assert len(crashes) == 1 and "a scheduler bug" in str(crashes[0])
    # the job the bug hit and the one behind it both fail with the cause
    assert all(isinstance(w, ModelFailed) and "a scheduler bug" in str(w) for w in waiting)
    with pytest.raises(ModelFailed, match="a scheduler bug"):
        asyncio.run(worker.run(lambda: "late"))


def test_a_stuck_step_releases_the_threads_waiting_on_the_model() -> None:
    """The watchdog's abandon_hung: while the model's thread is stuck in a step, a search
    waiting on that step and one queued behind it fail at once (an assistant's worker thread
    would otherwise wait forever); when the step returns, the thread ends quietly."""
    from rnnserve.edge.errors import ModelHung, ModelUnavailable

    stuck, entered = threading.Event(), threading.Event()

    class StuckGRU(TinyGRULM):
        def step(self, tokens: torch.Tensor, state: Any) -> Any:
            entered.set()
            stuck.wait(10)
            return super().step(tokens, state)

    model = StuckGRU(seed=7)
    scheduler = LanguageModelScheduler("stuck", model, max_batch_size=64, max_queue=64)
    scheduler.start()
    with ThreadPoolExecutor(2) as pool:
        in_step = pool.submit(scheduler.run_steps, lambda: greedy_walk(model, 1, 3, 0))
        assert entered.wait(10)
        queued = pool.submit(scheduler.run_steps, lambda: greedy_walk(model, 1, 3, 0))
        wait_until(lambda: len(scheduler._programs) == 1, 10, "the second program to queue behind the stuck step")
        started = time.monotonic()
        scheduler.abandon_hung(ModelHung("model 'stuck' stopped responding"))
        for future in (in_step, queued):
            with pytest.raises(ModelHung):
                future.result(timeout=5)
        assert time.monotonic() - started < 2
        with pytest.raises(ModelUnavailable, match="'stuck' is stopping"):  # new work: refused at once
            scheduler.call(lambda: 1)
    stuck.set()
    scheduler.stop()
    assert not scheduler._thread.is_alive()


def test_a_cancelled_idle_program_beyond_the_cap_is_dropped_quietly() -> None:
    """Before: dropping it called set_result on a cancelled future, which raised on the
    model's thread (and ended it)."""
    batcher = StepBatcher(TinyGRULM(seed=1), SchedulerStats(), max_rows=8, max_idle=1)
    cancelled: Future[Any] = Future()
    cancelled.cancel()
    batcher.add_idle(lambda: greedy_walk(TinyGRULM(seed=1), 1, 1, 0), cancelled)
    kept: Future[Any] = Future()
    batcher.add_idle(lambda: greedy_walk(TinyGRULM(seed=1), 1, 1, 0), kept)  # drops the cancelled one
    assert cancelled.cancelled() and not kept.done() and len(batcher) == 1
