"""Two-process data-parallel training (gloo) ends with identical replicas; rank 0 alone checkpoints."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from rnnserve_plugins.char_lstm.train import TrainConfig, train

SLICE = Path(__file__).resolve().parents[1] / "data" / "austen_slice"


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)})
    config = TrainConfig(seq_len=16, batch_size=4, lr=1e-2, warmup_steps=2, max_steps=6, eval_every=6,
                         checkpoint_every=3, log_every=2, min_count=1, seed=3, threads=1)
    result = train(Path(out), Path(out) / "run", {"embedding_dim": 8, "hidden_size": 16, "num_layers": 2,
                                                  "dropout": 0.2}, config, quiet=True, write_card=False)
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, f"{out}/rank{rank}.safetensors")
    dist.destroy_process_group()


def test_two_ranks_end_identical(tmp_path):
    for split in ("train", "val", "test"):
        (tmp_path / f"{split}.txt").write_text((SLICE / f"{split}.txt").read_text())
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    rank0, rank1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    assert (tmp_path / "run" / "last" / "trainer_state.json").exists()
    assert (tmp_path / "run" / "best" / "model.safetensors").exists()
