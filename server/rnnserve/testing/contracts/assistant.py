"""The assistant contract: suggestions, their probabilities, sessions and error codes, through a real server."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import pytest

from rnnserve.host.model_spec import ModelSpec
from rnnserve.testing.contracts.base import Contract
from rnnserve_client import Client, errors

SUGGESTION_KINDS = ("word", "next_words", "phrase")


class AssistantContract(Contract):
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
