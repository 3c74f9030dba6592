"""Process-wide torch settings applied by ``rnnserve serve``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from rnnserve.host import torch_runtime


@pytest.fixture(autouse=True)
def _keep_threads() -> Iterator[None]:
    """configure() sets the process's torch threads: put them back after each test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


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


def test_default_threads_leave_a_core_and_fit_every_model_thread_on_the_rest() -> None:
    assert torch_runtime.default_threads(cores=2, models=8) == 1
    assert torch_runtime.default_threads(cores=2, models=1) == 1
    assert torch_runtime.default_threads(cores=1, models=1) == 1
    assert torch_runtime.default_threads(cores=16, models=1) == 15
    assert torch_runtime.default_threads(cores=16, models=5) == 3
    assert torch_runtime.default_threads(cores=16, models=0) == 15


def test_the_rule_applies_unless_the_config_or_the_environment_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    expected = torch_runtime.default_threads(torch_runtime.usable_cores(), 3)
    assert torch_runtime.configure(None, models=3) == expected == torch.get_num_threads()
    assert torch_runtime.configure(2, models=3) == 2 == torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    torch.set_num_threads(2)
    assert torch_runtime.configure(None, models=3) == 2  # OMP_NUM_THREADS: torch's own reading of it stands
