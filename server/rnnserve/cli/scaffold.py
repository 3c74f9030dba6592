"""``rnnserve new-plugin NAME``: a working, installable, tested plugin package in one step.

The skeleton (``DIR/rnnserve-NAME/``) holds a ``pyproject.toml`` with the ``rnnserve``
entry point, a package with the hooks (``plugin.py``) and a minimal character-level
:class:`~rnnserve.plugin_api.LanguageModel` (``backend.py``: an Elman RNN, seeded random
weights until you train it, safetensors + JSON loading already written), and a test that
runs rnnserve's conformance contract against it. Then::

    cd rnnserve-NAME && pip install -e . && pytest && rnnserve serve
"""

from __future__ import annotations

import re
from pathlib import Path

from rnnserve.edge.errors import RnnserveError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


class ScaffoldError(RnnserveError):
    """The plugin cannot be created (bad name, or the directory is taken)."""


PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "rnnserve plugin: the {name} language-model backend"
readme = "README.md"
requires-python = ">=3.11"
dependencies = ["rnnserve>=0.1"]

# How rnnserve finds the plugin: entry-point name = plugin name, value = the hooks module.
[project.entry-points.rnnserve]
{name} = "{package}.plugin"

[tool.setuptools]
packages = ["{package}"]

[tool.setuptools.package-data]
# Ship trained models inside the package, e.g. models/<name>/config.json + model.safetensors + model_card.json
{package} = ["models/*/*"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

README = '''\
# {dist}

An rnnserve plugin: the `{name}` language-model backend.

```bash
pip install -e .          # into the environment that has rnnserve
pytest                    # rnnserve's LanguageModel conformance contract, on a real server
rnnserve plugins          # {name} is listed: hooks, backends, models
rnnserve serve            # serves the model `{name}` with every other installed model
```

- `{package}/plugin.py`: the hooks (`register_backends`, `register_models`).
- `{package}/backend.py`: the model math only (`vocab`, `state_batch_dims`, `initial_state`,
  `forward`); rnnserve does batching, sampling, stop sequences, streaming and cancellation.
- The shipped model has seeded random weights. Train yours, save it with
  `{camel}LanguageModel.save(directory)` (safetensors + JSON, no pickle), add a
  `model_card.json`, and point the `ModelSpec` in `plugin.py` at the directory.

See rnnserve's `docs/plugins.md` for the whole tutorial.
'''

INIT = '''\
"""{dist}: an rnnserve plugin providing the `{name}` language-model backend."""

__version__ = "0.1.0"
'''

PLUGIN = '''\
"""The `{name}` plugin's hooks: what it adds to rnnserve (found through the entry point in pyproject.toml)."""

from __future__ import annotations

from collections.abc import Callable

from rnnserve.plugin_api import BackendFactory, ModelCard, ModelSpec, hookimpl, lazy_backend

#: The rnnserve plugin API this plugin was written against (`rnnserve plugins` shows both).
PLUGIN_API_VERSION = "{api_version}"
BACKEND = "{name}"


@hookimpl
def register_backends(register: Callable[[str, BackendFactory], None]) -> None:
    """Backend name -> factory(spec, context) returning a LanguageModel (its module, and torch,
    load when a model does)."""
    register(BACKEND, lazy_backend(f"{{__package__}}.backend:create_backend"))


@hookimpl
def register_models(register: Callable[[ModelSpec], None]) -> None:
    """Models served by default. This one has seeded random weights: point `path` at your trained model."""
    register(ModelSpec(name="{name}", backend=BACKEND, options={{"seed": 0}}, card=ModelCard(
        description="{name}: an untrained character-level Elman RNN (seeded random weights)",
        license="MIT",
        limitations="Untrained: it generates noise.")))
'''

BACKEND = '''\
"""The `{name}` backend: a character-level Elman RNN implementing rnnserve's LanguageModel contract.

Only the model math lives here. The host calls ``forward`` once over a whole prompt
(prefill, scoring) and ``step`` once per generated token, over a batch of sequences whose
state tensors it gathers and scatters along ``state_batch_dims``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rnnserve.plugin_api import LanguageModel, LoadContext, ModelSpec, State
from safetensors.torch import load_file, save_file
from torch import nn

#: Printable ASCII and newline; id 0 is <bos>, id 1 is <unk>.
CHARS = "".join(chr(c) for c in range(32, 127)) + "\\n"


class CharVocab:
    """Characters <-> ids. Unknown characters become <unk> and are reported, never raised."""

    bos_id, unk_id, eos_id = 0, 1, None

    def __init__(self, chars: str = CHARS) -> None:
        self.chars = chars
        self._ids = {{c: i + 2 for i, c in enumerate(chars)}}

    @property
    def size(self) -> int:
        return len(self.chars) + 2

    def encode(self, text: str) -> tuple[list[int], list[str]]:
        ids = [self._ids.get(c, self.unk_id) for c in text]
        return ids, list(dict.fromkeys(c for c in text if c not in self._ids))

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[i - 2] for i in ids if 2 <= i < self.size)


class {camel}LanguageModel(LanguageModel):
    """Embedding -> nn.RNN (tanh) -> Linear. State: (h,), h [1, batch, hidden], batch at dim 1."""

    state_batch_dims = (1,)

    def __init__(self, hidden_size: int = 64, embedding_dim: int = 32, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self._vocab = CharVocab()
        self.config = {{"hidden_size": hidden_size, "embedding_dim": embedding_dim}}
        self.net = nn.ModuleDict({{
            "embed": nn.Embedding(self._vocab.size, embedding_dim),
            "rnn": nn.RNN(embedding_dim, hidden_size, batch_first=True),
            "head": nn.Linear(hidden_size, self._vocab.size),
        }}).eval().requires_grad_(False)

    @property
    def vocab(self) -> CharVocab:
        return self._vocab

    def initial_state(self, batch_size: int) -> State:
        return (torch.zeros(1, batch_size, self.config["hidden_size"]),)

    def forward(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """tokens [batch, time] -> logits [batch, time, vocab] (float32) and the state after them."""
        out, h = self.net["rnn"](self.net["embed"](tokens), state[0])
        return self.net["head"](out), (h,)

    # step(tokens [batch], state) -> (logits [batch, vocab], state) comes from LanguageModel:
    # forward over one token. Override it with a fused single step when speed matters.

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.net.parameters())

    def save(self, directory: Path) -> None:
        """config.json + model.safetensors: no pickle anywhere."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps(self.config, indent=2) + "\\n")
        save_file({{k: v.contiguous() for k, v in self.net.state_dict().items()}}, str(directory / "model.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> {camel}LanguageModel:
        model = cls(**json.loads((directory / "config.json").read_text()))
        model.net.load_state_dict(load_file(str(directory / "model.safetensors")))
        return model


def create_backend(spec: ModelSpec, context: LoadContext) -> {camel}LanguageModel:
    """The factory registered in plugin.py: a trained model from `spec.path`, or seeded random weights."""
    if spec.path is not None:
        return {camel}LanguageModel.load(context.resolve_path(spec))
    options: dict[str, Any] = dict(spec.options)
    return {camel}LanguageModel(**options)
'''

TEST = '''\
"""`{name}` against rnnserve's LanguageModel contract: the step contract, then a real server."""

from rnnserve.testing import LanguageModelContract


class Test{camel}(LanguageModelContract):
    plugin = "{name}"  # the installed entry point (pip install -e .), so the packaging is tested too
    model = "{name}"  # the model plugin.register_models ships
    sample_text = "It is a truth universally acknowledged."
'''


def names(name: str) -> dict[str, str]:
    """The template's names for plugin ``name`` (``my-lm``): distribution, package, class prefix."""
    name = name.removeprefix("rnnserve-")
    if not NAME_PATTERN.match(name):
        raise ScaffoldError(f"plugin name {name!r} must be lower case letters, digits and single hyphens, "
                            "starting with a letter (e.g. my-lm)")
    from rnnserve.plugin_api import API_VERSION

    return {"name": name, "dist": f"rnnserve-{name}", "package": "rnnserve_" + name.replace("-", "_"),
            "camel": "".join(part.capitalize() for part in name.split("-")), "api_version": API_VERSION}


def create_plugin(name: str, parent: str | Path = ".") -> Path:
    """Write the skeleton of plugin ``name`` into ``parent/rnnserve-NAME`` and return that directory."""
    n = names(name)
    root = Path(parent) / n["dist"]
    if root.exists() and any(root.iterdir()):
        raise ScaffoldError(f"{root} already exists and is not empty")
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{n['package']}/__init__.py": INIT,
        f"{n['package']}/plugin.py": PLUGIN,
        f"{n['package']}/backend.py": BACKEND,
        f"tests/test_{n['package'].removeprefix('rnnserve_')}_conformance.py": TEST,
    }
    for relative, template in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**n))
    return root
