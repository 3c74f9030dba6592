"""The jordan-lm plugin against rnnserve's LanguageModel contract, through its installed entry point."""

from rnnserve.testing import LanguageModelContract


class TestJordanLM(LanguageModelContract):
    plugin = "jordan-lm"  # the entry point: tests the packaging too
    model = "austen-jordan-lm"  # the model the plugin ships
    sample_text = "It is a truth that a single man must be in want of a wife."  # every word in the vocabulary
    prompt = "Mr. Bennet"
