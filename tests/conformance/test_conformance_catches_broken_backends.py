"""The contracts fail broken backends, each on the right test (and pass the correct toy backends).

A generated test module subclasses every contract with the toy test plugin's backends and
with broken variants of them; it runs in a pytest subprocess and each class's failures
are compared with what its defect should break.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MODULE = '''
import sys

import torch

from rnnserve import hookimpl
from rnnserve.ops.config import ModelSpec
from rnnserve.testing import AssistantContract, LanguageModelContract, TranslatorContract
from tests.support.toy_plugin import TinyGRULM, ToyAssistant, ToySession, ToyTranslator, ToyVocab


class StepDrifts(TinyGRULM):
    """step() disagrees with forward()."""
    def step(self, tokens, state):
        logits, state = super().step(tokens, state)
        return logits + 0.01, state


class BatchLeaks(TinyGRULM):
    """Each row's step sees the other rows (a batch-mean leak)."""
    def step(self, tokens, state):
        h = state[0]
        return super().step(tokens, (h + 0.5 * (h.mean(dim=1, keepdim=True) - h),))


class RaisingVocab(ToyVocab):
    def encode(self, text):
        return [self._ids[ch] for ch in text], []


class VocabRaises(TinyGRULM):
    """Unknown characters raise instead of being reported."""
    def __init__(self):
        super().__init__()
        self._vocab = RaisingVocab()


class WrongBatchDim(TinyGRULM):
    """Declares batch dim 0 for a [layers, batch, hidden] state."""
    state_batch_dims = (0,)


class UnsortedNBest(ToyTranslator):
    def translate(self, texts, options):
        results = super().translate(texts, options)
        for result in results:
            result.hypotheses.reverse()
        return results


class ForgetfulSession(ToySession):
    def delete(self, chars):
        pass


class ForgetfulAssistant(ToyAssistant):
    def open_session(self, options, text=""):
        return ForgetfulSession(options, text)


BACKENDS = {"good-lm": TinyGRULM, "step-drifts": StepDrifts, "batch-leaks": BatchLeaks,
            "vocab-raises": VocabRaises, "wrong-batch-dim": WrongBatchDim, "good-tr": ToyTranslator,
            "unsorted-n-best": UnsortedNBest, "good-assistant": ToyAssistant,
            "forgetful-assistant": ForgetfulAssistant}


@hookimpl
def register_backends(register):
    for name, cls in BACKENDS.items():
        register(name, lambda spec, context, cls=cls: cls())


class LM(LanguageModelContract):
    plugin = sys.modules[__name__]
    sample_text = "the quick brown fox jumps over the lazy dog."
    prompt = "the quick"


class TestGoodLM(LM):
    spec = ModelSpec("m", "good-lm")


class TestStepDrifts(LM):
    spec = ModelSpec("m", "step-drifts")


class TestBatchLeaks(LM):
    spec = ModelSpec("m", "batch-leaks")


class TestVocabRaises(LM):
    spec = ModelSpec("m", "vocab-raises")


class TestWrongBatchDim(LM):
    spec = ModelSpec("m", "wrong-batch-dim")


class TR(TranslatorContract):
    plugin = sys.modules[__name__]
    texts = ("good day", "where is the station", "hello")


class TestGoodTranslator(TR):
    spec = ModelSpec("t", "good-tr")


class TestUnsortedNBest(TR):
    spec = ModelSpec("t", "unsorted-n-best")


class AS(AssistantContract):
    plugin = sys.modules[__name__]
    text = "Eli"


class TestGoodAssistant(AS):
    spec = ModelSpec("a", "good-assistant")


class TestForgetfulAssistant(AS):
    spec = ModelSpec("a", "forgetful-assistant")
'''

#: class -> the contract tests its defect must fail (exactly these, unless marked as "at least").
EXPECTED = {
    "TestGoodLM": set(),
    "TestStepDrifts": {"test_prefill_equals_step_by_step"},
    "TestBatchLeaks": {"test_batched_step_equals_single_steps",
                       "test_seeded_sampling_is_batch_invariant"},
    "TestVocabRaises": {"test_unknown_characters_are_reported_not_raised"},
    "TestGoodTranslator": set(),
    "TestUnsortedNBest": {"test_n_best_is_ordered_by_score"},
    "TestGoodAssistant": set(),
    "TestForgetfulAssistant": {"test_session_after_edits_equals_a_fresh_suggest"},
}
AT_LEAST = {"TestWrongBatchDim": {"test_state_shapes_match_state_batch_dims",
                                  "test_batched_step_equals_single_steps"}}


def test_contracts_fail_broken_backends_on_the_right_tests(tmp_path: Path) -> None:
    (tmp_path / "test_mutants.py").write_text(textwrap.dedent(MODULE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=report.xml",
                           "test_mutants.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    cases = ET.parse(tmp_path / "report.xml").getroot().iter("testcase")
    failed: dict[str, set[str]] = {name: set() for name in [*EXPECTED, *AT_LEAST]}
    ran: dict[str, int] = dict.fromkeys(failed, 0)
    for case in cases:
        cls = case.get("classname", "").rsplit(".", 1)[-1]
        ran[cls] += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed[cls].add(case.get("name", ""))
        assert case.find("skipped") is None, f"{cls}.{case.get('name')} was skipped"
    assert all(count >= 4 for count in ran.values()), (ran, proc.stdout[-3000:])
    for cls, expected in EXPECTED.items():
        assert failed[cls] == expected, (cls, failed[cls], proc.stdout[-5000:])
    for cls, expected in AT_LEAST.items():
        assert expected <= failed[cls], (cls, failed[cls])
