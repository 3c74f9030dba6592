"""The configuration keys and limits added for reliability and security."""

from __future__ import annotations

from pathlib import Path

import pytest

from rnnserve.edge.errors import ConfigurationError
from rnnserve.ops.config import Limits, ServerConfig, load_config


def test_new_keys_load_with_paths_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "rnnserve.toml").write_text("""
[server]
tls_cert = "tls/server.pem"
tls_key = "tls/server.key"
tls_client_ca = "/etc/rnnserve/ca.pem"
auth_token_file = "token"
reflection = false
require_manifest = true
log_format = "json"

[limits]
max_in_flight = 64
retry_after_ms = 250
step_timeout_s = 5
max_phrase_chars = 100
max_translation_beams = 128

[[models]]
name = "m"
backend = "toy-lm"
step_timeout_s = 60
""")
    config = load_config(tmp_path / "rnnserve.toml")
    assert config.path(config.tls_cert) == tmp_path / "tls" / "server.pem"  # type: ignore[arg-type]
    assert config.path(config.tls_client_ca) == Path("/etc/rnnserve/ca.pem")  # type: ignore[arg-type]
    assert config.path(config.auth_token_file) == tmp_path / "token"  # type: ignore[arg-type]
    assert (config.reflection, config.require_manifest, config.log_format) == (False, True, "json")
    assert config.limits.max_in_flight == 64 and config.limits.retry_after_ms == 250
    assert config.limits.step_timeout_s == 5 and config.models[0].step_timeout_s == 60
    assert "auth_token=" not in repr(ServerConfig(auth_token="hunter2"))  # never in logs or tracebacks


def test_defaults() -> None:
    limits = Limits()
    assert (limits.max_in_flight, limits.step_timeout_s, limits.retry_after_ms) == (512, 30.0, 500)
    config = ServerConfig()
    assert config.host == "127.0.0.1" and config.reflection and config.tls_cert is None and config.auth_token is None


@pytest.mark.parametrize("change", [{"max_in_flight": 0}, {"step_timeout_s": -1}, {"max_queue": 0},
                                    {"max_new_tokens": 10, "default_max_new_tokens": 20}, {"max_n": True}])
def test_nonsense_limits_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="limits"):
        Limits(**change)  # type: ignore[arg-type]
