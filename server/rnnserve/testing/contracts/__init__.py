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

One module a backend kind: :mod:`.language_model`, :mod:`.translator`, :mod:`.assistant`;
what they share (fixtures, the served copy) is in :mod:`.base`. Import them from here or
from :mod:`rnnserve.testing`.
"""

from __future__ import annotations

from rnnserve.testing.contracts.assistant import SUGGESTION_KINDS, AssistantContract
from rnnserve.testing.contracts.base import Contract
from rnnserve.testing.contracts.language_model import LanguageModelContract
from rnnserve.testing.contracts.translator import TranslatorContract

__all__ = ["SUGGESTION_KINDS", "AssistantContract", "Contract", "LanguageModelContract", "TranslatorContract"]
