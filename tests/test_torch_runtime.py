"""Process-wide torch settings applied by ``rnnserve serve``."""

from __future__ import annotations

import pytest
import torch

from rnnserve.host import torch_runtime


@pytest.mark.parametrize(("env", "default"), [(torch_runtime.ONEDNN_CACHE_ENV, torch_runtime.DEFAULT_ONEDNN_CACHE),
                                               (torch_runtime.IDEEP_CACHE_ENV, torch_runtime.DEFAULT_IDEEP_CACHE)])
def test_kernel_caches_get_a_bound_unless_the_environment_sets_one(monkeypatch: pytest.MonkeyPatch, env: str,
                                                                   default: int) -> None:
    monkeypatch.delenv(env, raising=False)
    torch_runtime.configure()
    assert torch_runtime.os.environ[env] == str(default)
    monkeypatch.setenv(env, "7")
    torch_runtime.configure()
    assert torch_runtime.os.environ[env] == "7"


def test_thread_count_is_applied_only_when_given() -> None:
    before = torch.get_num_threads()
    try:
        torch_runtime.configure(None)
        assert torch.get_num_threads() == before
        torch_runtime.configure(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
