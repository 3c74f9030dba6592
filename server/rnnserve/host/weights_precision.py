"""What precision a loaded backend's weights run in, read from its torch modules (``GetModel``'s
``precision``; ``rnnserve models`` shows it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import torch
from torch import nn

#: Where torch's dynamically quantized modules (int8 weights) live.
_QUANTIZED_MODULES = ("torch.ao.nn.quantized", "torch.nn.quantized")


def weights_precision(backend: object) -> str:
    """The precision a loaded backend's weights run in, read from its torch modules.

    "int8" when any module is int8 (torch's dynamically quantized modules, or one whose
    ``precision`` says so: ``rnnserve.host.int8.Int8Linear``); otherwise the dtype holding most of
    the floating-point weights ("float32", "bfloat16", ...). Modules are found among the
    backend's attributes and theirs, a few levels deep (an assistant's language model
    included); "" when there are none.
    """
    modules = list(_torch_modules(backend))
    if any(getattr(m, "precision", None) == "int8" or type(m).__module__.startswith(_QUANTIZED_MODULES)
           for module in modules for m in module.modules()):
        return "int8"
    sizes: Counter[torch.dtype] = Counter()
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.is_floating_point():
                sizes[tensor.dtype] += tensor.numel()
    return str(sizes.most_common(1)[0][0]).removeprefix("torch.") if sizes else ""


def _torch_modules(obj: object, depth: int = 4, seen: set[int] | None = None) -> Iterator[nn.Module]:
    """The ``nn.Module`` objects among ``obj``'s attributes, theirs, ... ``depth`` levels down."""
    seen = set() if seen is None else seen
    attributes = getattr(obj, "__dict__", None)
    if depth == 0 or not isinstance(attributes, dict) or id(obj) in seen:
        return
    seen.add(id(obj))
    for value in list(attributes.values()):
        if isinstance(value, nn.Module):
            if id(value) not in seen:
                seen.add(id(value))
                yield value
        elif not isinstance(value, type) and not callable(value):
            yield from _torch_modules(value, depth - 1, seen)
