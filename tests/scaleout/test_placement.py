"""Where a training process runs: device, rank and process-group backend under torchrun."""

from __future__ import annotations

import pytest
import torch

from rnnserve.training import placement


def test_a_process_run_directly_trains_alone_on_the_cpu_without_gpus() -> None:
    place = placement("auto", env={}, cuda_devices=0)
    assert place.device == torch.device("cpu") and place.backend is None and not place.distributed
    assert place.ddp_device_ids is None


def test_torchrun_on_cpus_uses_gloo() -> None:
    place = placement("auto", env={"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"}, cuda_devices=0)
    assert (place.rank, place.world, place.local_rank, place.backend) == (3, 4, 1, "gloo")
    assert place.device == torch.device("cpu") and place.ddp_device_ids is None


def test_torchrun_on_gpus_gives_each_process_its_local_gpu_and_nccl() -> None:
    env = {"WORLD_SIZE": "16", "RANK": "9", "LOCAL_RANK": "1"}  # 2 nodes x 8 GPUs, second node
    place = placement("auto", env=env, cuda_devices=8)
    assert place.device == torch.device("cuda", 1) and place.backend == "nccl"
    assert place.ddp_device_ids == [1] and place.rank == 9


def test_device_cpu_keeps_a_gpu_machine_on_gloo() -> None:
    place = placement("cpu", env={"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}, cuda_devices=8)
    assert place.device == torch.device("cpu") and place.backend == "gloo"


def test_a_single_gpu_process_needs_no_process_group() -> None:
    place = placement("cuda", env={}, cuda_devices=1)
    assert place.device == torch.device("cuda", 0) and place.backend is None


@pytest.mark.parametrize(("device", "gpus", "local_rank"), [("cuda", 0, "0"), ("auto", 2, "2")])
def test_more_processes_than_gpus_is_refused(device: str, gpus: int, local_rank: str) -> None:
    with pytest.raises(ValueError, match="GPU"):
        placement(device, env={"WORLD_SIZE": "3", "LOCAL_RANK": local_rank}, cuda_devices=gpus)


def test_unknown_devices_are_refused() -> None:
    with pytest.raises(ValueError, match="device must be one of"):
        placement("tpu", env={}, cuda_devices=0)
