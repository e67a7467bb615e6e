"""Device, precision and process-group plumbing shared by training, prediction, generation and benchmarks.

The one place that reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .errors import ConfigError


def launch_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) of this process as torchrun set them; (0, 1, 0) when not launched by it."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0))


def launched_by_torchrun() -> bool:
    return "WORLD_SIZE" in os.environ


def pick_device(name: str = "auto") -> torch.device:
    """'auto' = the GPU of this process when there is one (LOCAL_RANK under torchrun), else the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", launch_env()[2] % torch.cuda.device_count())
        return torch.device("cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 where the hardware runs it natively ('auto'), forced ('bf16'), or none ('fp32')."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
        return torch.bfloat16 if supported else None
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class ProcessGroup:
    """This process's place among the ones torchrun started (a single process when not launched by it)."""

    rank: int = 0
    world_size: int = 1
    started_here: bool = False
    device: torch.device = torch.device("cpu")

    @classmethod
    def from_env(cls, device: torch.device) -> "ProcessGroup":
        world_size = launch_env()[1]
        if world_size <= 1:
            return cls()
        started = False
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
            started = True
        return cls(dist.get_rank(), dist.get_world_size(), started, device)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        if self.world_size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def average_buffers(self, model: torch.nn.Module) -> None:
        """Average floating buffers (BatchNorm running statistics) across processes: DDP keeps parameters in
        sync but each process updates its running statistics from its own share of the batch."""
        if self.world_size == 1:
            return
        for buffer in model.buffers():
            if buffer.is_floating_point():
                dist.all_reduce(buffer)
                buffer /= self.world_size

    def barrier(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.started_here and dist.is_initialized():
            dist.destroy_process_group()
