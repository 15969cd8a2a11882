"""Data-parallel training with ``torchrun`` + ``torch.distributed`` (DDP), a no-op in a single process.

A generator's ``fit`` wraps its trainable modules with ``wrap_data_parallel`` and the training loop
shards each global batch by rank (``medsyn.training.batches.shard_batch``); only rank 0 writes
checkpoints. ``torchrun --nproc_per_node 2 -m monai.bundle run --config_file "[train.yaml,
train_multigpu.yaml]"`` initialises the process group through ``init_distributed`` (gloo on CPU,
nccl on GPUs).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from medsyn.io.output_folder import claim_output_folder

__all__ = [
    "all_reduce_mean",
    "barrier",
    "broadcast_buffers",
    "broadcast_from_main",
    "claim_on_main_process",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "rank_and_world_size",
    "shutdown_distributed",
    "unwrap",
    "wrap_data_parallel",
]


def init_distributed(backend: str | None = None) -> tuple[int, int]:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).

    backend: "gloo" (CPU) or "nccl" (GPUs); None picks nccl when CUDA is available, else gloo.
    Returns (rank, world_size). Without torchrun's environment this is a single process: (0, 1).
    """
    if is_distributed():
        return rank_and_world_size()
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return 0, 1
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    dist.init_process_group(backend=backend)
    return rank_and_world_size()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank_and_world_size() -> tuple[int, int]:
    if not is_distributed():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def is_main_process() -> bool:
    return rank_and_world_size()[0] == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def wrap_data_parallel(module: nn.Module) -> nn.Module:
    """DistributedDataParallel(module) when a process group is up, else ``module`` itself.

    DDP broadcasts rank 0's parameters and buffers at construction, so all ranks start identical.
    """
    if not is_distributed():
        return module
    device = next(module.parameters()).device
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain module inside a DDP or Opacus GradSampleModule wrapper (what checkpoints store)."""
    while True:
        inner = (
            getattr(module, "module", None)
            if isinstance(module, nn.parallel.DistributedDataParallel)
            else None
        )
        if inner is None and type(module).__name__ == "GradSampleModule":
            inner = module._module
        if inner is None:
            return module
        module = inner


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Mean of each value over ranks (identity in one process); used so every rank logs the same losses."""
    if not is_distributed() or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[key] for key in keys], dtype=torch.float64)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    tensor /= dist.get_world_size()
    return {key: float(value) for key, value in zip(keys, tensor.tolist())}


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's ``value`` (any picklable object) on every rank; ``value`` itself in one process."""
    if not is_distributed():
        return value
    holder = [value]
    # nccl moves the pickled object through this rank's GPU (LOCAL_RANK, as medsyn.training.device picks it)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if dist.get_backend() == "nccl" else None
    dist.broadcast_object_list(holder, src=0, device=device)
    return holder[0]


def broadcast_buffers(module: nn.Module) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) to every rank.

    DDP keeps parameters identical but each rank's last forward updates its buffers from its own shard
    (SyncBatchNorm needs GPUs), so the loop calls this at the end: all ranks then hold rank 0's state,
    which is also what rank 0's checkpoint holds.
    """
    if not is_distributed():
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def shutdown_distributed() -> None:
    """Leave the process group (after the last barrier), if one is up."""
    if is_distributed():
        dist.destroy_process_group()


@contextmanager
def claim_on_main_process(output_dir: Path, *, writer: str, settings: Mapping[str, Any]) -> Iterator[None]:
    """Rank 0 (the only writer) claims ``output_dir`` (medsyn.io.output_folder); every rank learns whether
    it was refused, so no rank waits at a collective for one that stopped. A single process just claims."""
    with ExitStack() as stack:
        refusal: BaseException | None = None
        if is_main_process():
            try:
                stack.enter_context(claim_output_folder(output_dir, writer=writer, settings=dict(settings)))
            except (OSError, ValueError, RuntimeError) as error:
                refusal = error
        message = broadcast_from_main(None if refusal is None else f"{type(refusal).__name__}: {refusal}")
        if refusal is not None:
            raise refusal
        if message is not None:
            raise RuntimeError(f"rank 0 refused the run: {message}")
        yield
