"""Writing-assistant backend plugin: word completion, next words and phrases while a person types.

Built on a language model the host already serves (plugins building on plugins). Two shipped
assistants: ``writing-assistant`` for modern English (on ``english-char-lstm-int8``; on the
Austen model while a checkout lacks the English checkpoint) and ``austen-writing-assistant``
(on ``austen-char-lstm-int8``, for Jane Austen-style prose).

The hooks (the entry point in ``pyproject.toml``) and the shipped models' specs are in
``plugin.py``; importing either does not import torch.
"""
