"""Distributed training under the real launcher: ``torchrun --nproc-per-node=2`` (gloo, CPU).

``tests/char_lstm/test_char_lstm_ddp.py`` already shows that two ranks (``mp.spawn``) end
with identical parameters and that rank 0 alone checkpoints. This adds the other half:
DDP over 2 ranks x B streams is the same optimisation as one process over 2B streams (the
same global batch: ``make_streams`` cuts the text into world x B streams and rank r takes
its B), so rank 0's checkpoint and validation loss match a single-process run; and a run
stopped at step 3 resumes under torchrun from rank 0's checkpoint (every rank loads it).

Both runs stop at step 3 and resume to step 6 (the learning rate of steps 0-2 does not
depend on ``max_steps`` here: 2 warm-up steps, then the cosine starts at step 2), so the
DDP and the single-process run take the same path, resume included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

SLICE = Path(__file__).resolve().parents[1] / "data" / "austen_slice"
MODEL = ["--embedding-dim", "8", "--hidden-size", "16", "--num-layers", "2", "--dropout", "0.0"]
TRAIN = ["--seq-len", "16", "--lr", "0.01", "--warmup-steps", "2", "--eval-every", "6",
         "--checkpoint-every", "3", "--log-every", "1", "--min-count", "1", "--seed", "3", "--threads", "1",
         "--eval-chars", "2000"]


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "val", "test"):
        (data / f"{split}.txt").write_text((SLICE / f"{split}.txt").read_text())
    return data


def _train(launcher: list[str], data: Path, out: Path, batch_size: int, max_steps: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RNNSERVE_PLUGINS": "char-lstm"}
    started = time.perf_counter()
    proc = subprocess.run([*launcher, "-m", "rnnserve_plugins.char_lstm.train", "--data", str(data), "--out",
                           str(out), "--quiet", "--no-card", "--batch-size", str(batch_size), "--max-steps",
                           str(max_steps), *MODEL, *TRAIN],
                          capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return time.perf_counter() - started


@pytest.mark.timeout(300)
def test_torchrun_two_ranks_match_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    data = _data(tmp_path)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc-per-node=2"]
    ddp_s = single_s = 0.0
    for max_steps in (3, 6):  # stop at step 3, then resume from OUT/last to step 6
        ddp_s += _train(torchrun, data, tmp_path / "ddp", batch_size=4, max_steps=max_steps)  # 2 ranks x 4 streams
        single_s += _train([sys.executable], data, tmp_path / "single", batch_size=8,  # 1 process x 8 streams
                           max_steps=max_steps)
        state = json.loads((tmp_path / "ddp" / "last" / "trainer_state.json").read_text())
        assert state["step"] == max_steps

    ddp_state = json.loads((tmp_path / "ddp" / "last" / "trainer_state.json").read_text())
    single_state = json.loads((tmp_path / "single" / "last" / "trainer_state.json").read_text())
    assert ddp_state["step"] == single_state["step"] == 6
    ddp_val, single_val = ddp_state["best_val"], single_state["best_val"]
    assert [r["step"] for r in ddp_state["history"]["train"]] == list(range(1, 7))  # 1-3, then resumed 4-6
    print(f"\ntorchrun 2x4 streams: {ddp_s:.1f} s, val {ddp_val:.6f} nats/char; "
          f"1 process x 8 streams: {single_s:.1f} s, val {single_val:.6f} nats/char")
    assert abs(ddp_val - single_val) < 1e-4

    ddp = load_file(str(tmp_path / "ddp" / "last" / "model.safetensors"))
    single = load_file(str(tmp_path / "single" / "last" / "model.safetensors"))
    assert ddp.keys() == single.keys()
    worst = max(float((ddp[k] - single[k]).abs().max()) for k in ddp)
    print(f"largest parameter difference after 6 steps: {worst:.2e}")
    assert worst < 1e-4


TRANSLATOR_MODEL = {"embedding_dim": 16, "encoder_hidden": 16, "encoder_layers": 1, "decoder_hidden": 24,
                    "decoder_layers": 1, "dropout": 0.0}
TRANSLATOR_TRAIN = {"batch_tokens": 400, "lr": 1e-2, "min_lr": 1e-3, "warmup_steps": 2, "eval_every": 4,
                    "dev_pairs": 4, "checkpoint_every": 2, "log_every": 1, "seed": 3, "threads": 1}


def _translator_rank(rank: int, world: int, port: int, data: str, out: str, max_steps: int) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file

    from rnnserve_plugins.gru_translator.train import TrainConfig, train

    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world)})
    result = train(Path(data), Path(out) / "run", TRANSLATOR_MODEL,
                   TrainConfig(max_steps=max_steps, **TRANSLATOR_TRAIN), quiet=True)
    tensors = {k: v.clone().contiguous() for k, v in result.model.state_dict().items()}  # clone: tied weights
    save_file(tensors, f"{out}/rank{rank}.safetensors")
    dist.destroy_process_group()


def _translator_single(data: Path, out: Path, max_steps: int, accumulate: int) -> None:
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in
             {**TRANSLATOR_MODEL, **TRANSLATOR_TRAIN, "max_steps": max_steps, "accumulate": accumulate}.items()]
    proc = subprocess.run([sys.executable, "-m", "rnnserve_plugins.gru_translator.train", "--data", str(data),
                           "--out", str(out), "--quiet", *flags], capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "RNNSERVE_PLUGINS": "gru-seq2seq"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.timeout(300)
def test_translator_on_two_ranks_matches_one_process_accumulating_two_batches(tmp_path: Path) -> None:
    """The gru-seq2seq trainer under DDP (2 ranks, gloo): each rank takes its own batches and the
    gradients are averaged, so both replicas end identical. A run of 2 ranks stopped at step 2
    resumes on 2 ranks, or on one process that adds up the gradients of the same two batches a
    step (``--accumulate 2``): both take the same steps 3 and 4 (across an epoch boundary: 3
    steps an epoch) and end with the same weights."""
    import shutil
    import socket

    import torch
    import torch.multiprocessing as mp

    from rnnserve_plugins.gru_translator.subwords import MODEL_FILE

    toy = Path(__file__).resolve().parents[1] / "data" / "toy_translation"
    data = tmp_path / "data"
    data.mkdir()
    en, de = (toy / "toy.en").read_text().splitlines(), (toy / "toy.de").read_text().splitlines()
    for split, rows in (("train", slice(0, 120)), ("dev", slice(260, 300)), ("test", slice(260, 300))):
        (data / f"{split}.en").write_text("".join(line + "\n" for line in en[rows]))
        (data / f"{split}.de").write_text("".join(line + "\n" for line in de[rows]))
    shutil.copy(toy / "toy.model", data / MODEL_FILE)
    ddp = tmp_path / "ddp"
    started = time.perf_counter()
    for max_steps in (2, 4):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        mp.spawn(_translator_rank, args=(2, port, str(data), str(ddp), max_steps), nprocs=2, join=True)
        if max_steps == 2:
            shutil.copytree(ddp / "run", tmp_path / "single")
            state = json.loads((ddp / "run" / "last" / "trainer_state.json").read_text())
            assert (state["step"], state["epoch"], state["position"]) == (2, 0, 4)  # 4 batches of epoch 0 used
    ddp_s = time.perf_counter() - started
    rank0, rank1 = (load_file(str(ddp / f"rank{r}.safetensors")) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    state = json.loads((ddp / "run" / "last" / "trainer_state.json").read_text())
    assert (state["step"], state["epoch"], state["position"]) == (4, 1, 2)
    assert (ddp / "run" / "best" / "model.safetensors").exists()

    started = time.perf_counter()
    _translator_single(data, tmp_path / "single", max_steps=4, accumulate=2)
    single_s = time.perf_counter() - started
    single_state = json.loads((tmp_path / "single" / "last" / "trainer_state.json").read_text())
    assert (single_state["step"], single_state["epoch"], single_state["position"]) == (4, 1, 2)
    single = load_file(str(tmp_path / "single" / "last" / "model.safetensors"))
    ddp_weights = load_file(str(ddp / "run" / "last" / "model.safetensors"))
    assert single.keys() == ddp_weights.keys()
    worst = max(float((ddp_weights[k] - single[k]).abs().max()) for k in ddp_weights)
    print(f"\ntranslator, 2 ranks to step 2, then 2 ranks to step 4: {ddp_s:.1f} s; resumed at step 2 on 1 process "
          f"x 2 batches a step: {single_s:.1f} s; largest parameter difference at step 4: {worst:.2e}")
    assert worst < 1e-4
