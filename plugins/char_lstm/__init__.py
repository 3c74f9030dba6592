"""Character-level recurrent language model backend (``char-lstm``), a plugin of the ``rnnserve`` group.

Registers the ``char-lstm`` backend factory, the shipped models (each when its checkpoint
is present in ``models/``): ``austen-char-lstm`` (Jane Austen's novels) and
``english-char-lstm`` (modern English documentation and interface text), both with
``dtype = "auto"`` (bfloat16 on CPUs that multiply it natively, where it is as fast as
float32 for one stream and up to 2.2x faster batched, at the same test loss to four
decimals); and the commands ``data austen``, ``data english``, ``train char-lstm`` and
``eval char-lstm``. Each checkpoint is also served int8-quantized as ``<name>-int8``, for the
writing assistants.

The hooks (the entry point in ``pyproject.toml``) and the shipped models' specs are in
``plugin.py``; importing either does not import torch.
"""
