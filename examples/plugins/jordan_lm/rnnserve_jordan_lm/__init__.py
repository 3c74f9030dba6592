"""rnnserve-jordan-lm: a word-level Jordan network language model, as an rnnserve plugin."""

__version__ = "0.1.0"
