"""Timing helper shared by the benchmarks: median wall time of a step, CUDA-synchronised on a GPU."""

import statistics
import time

import torch


def median_ms(step, device: torch.device, repeats: int, warmup: int = 3) -> float:
    """Median milliseconds of ``step()`` over ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3
