"""Data-parallel SVI across processes (``torchrun --nproc_per_node=K``): gloo on CPU, NCCL on GPU.

Every process builds the same model from the same seed, trains on its own shard of the data, and before
each optimizer step the gradients of all Pyro parameters are averaged across processes (all-reduce, in
the order of the parameters' names so every process reduces the same tensors in the same order). The
replicas therefore stay identical — what DistributedDataParallel does for a plain nn.Module, done at the
level of Pyro's optimizer so it covers modules registered with ``pyro.module`` and bare ``pyro.param``s.
"""

from __future__ import annotations

import os

import pyro
import torch
import torch.distributed as dist
from pyro.optim import PyroOptim

from ppl_models.infer.optim import OneOptimizer


def init_distributed(device: torch.device) -> tuple[int, int]:
    """(rank, world size); joins the process group when started by torchrun with WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    if device.type == "cuda" and device.index is not None:
        raise ValueError(f"--device {device}: under torchrun give --device cuda, each process takes GPU LOCAL_RANK")
    if device.type == "cuda":  # before the process group, so NCCL binds each rank to its own GPU, not all to 0
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


class _AllReduce:
    """Average every parameter's gradient across processes, then step as the optimizer it is mixed into."""

    def __call__(self, params, *args, **kwargs):
        store = pyro.get_param_store()
        world = dist.get_world_size()
        for p in sorted(params, key=store.param_name):  # same tensors in the same order on every rank
            grad = p.grad if p.grad is not None else torch.zeros_like(p)
            dist.all_reduce(grad)
            p.grad = grad / world
        return super().__call__(params, *args, **kwargs)


class AllReduceOptim(_AllReduce, PyroOptim):
    """A Pyro optimizer that averages every parameter's gradient across processes before stepping."""

    @classmethod
    def wrapping(cls, optim: PyroOptim) -> PyroOptim:
        """The same optimizer (kind, constructor, arguments, clipping) with the all-reduce in front: a
        ``make_optimizer`` optimizer stays one multi-tensor optimizer, and reads the same saved state."""
        if isinstance(optim, OneOptimizer):
            return AllReduceOneOptimizer(optim.pt_optim_constructor, optim.pt_optim_args)
        return cls(optim.pt_optim_constructor, optim.pt_optim_args, optim.pt_clip_args)


class AllReduceOneOptimizer(_AllReduce, OneOptimizer):
    """:class:`~ppl_models.infer.optim.OneOptimizer` with the all-reduce in front."""
