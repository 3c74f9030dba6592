"""TOML configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnserve.edge.errors import ConfigurationError
from rnnserve.ops.config import load_config


def test_config_file_sets_server_limits_and_models(tmp_path: Path) -> None:
    path = tmp_path / "rnnserve.toml"
    path.write_text("""
[server]
port = 6000
default_models = false

[limits]
max_prompt_chars = 100

[[models]]
name = "mine"
backend = "char-lstm"
path = "models/mine"
options = { quantize = true }
card = { description = "my model", metrics = { test_bits_per_char = 1.9 } }
""")
    config = load_config(path)
    assert config.port == 6000 and config.host == "127.0.0.1" and not config.default_models
    assert config.limits.max_prompt_chars == 100 and config.limits.max_new_tokens == 2048
    (model,) = config.models
    assert model.options == {"quantize": True} and model.card.metrics == {"test_bits_per_char": 1.9}
    assert config.base_dir == tmp_path


@pytest.mark.parametrize("text, needle", [
    ("[limits]\nmax_promt_chars = 1\n", "max_prompt_chars"),
    ("[serve]\n", "valid: server, limits, models"),
    ("[[models]]\nname = 'x'\n", "'name' and 'backend'"),
    ("[[models]]\nname='a'\nbackend='b'\n[[models]]\nname='a'\nbackend='b'\n", "duplicate"),
    ("not toml = = =", "cannot read"),
])
def test_bad_config_names_what_is_valid(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=needle):
        load_config(path)
