r"""Fast DVAE training on a GPU: the guide's frame-by-frame sampling loop replayed from a CUDA graph.

A DVAE's guide draws z_1, ..., z_T one after the other (z_t needs z_{t-1}: :func:`~ppl_models.dvae.sequence.unroll`).
Each frame is a handful of tiny kernels, so on a GPU the step is bound by launching them from Python, not by
arithmetic: an RVAE step (513 bins, LSTM(128), batch 32, 100 frames) spends most of its time in this loop.
Inside ``with graphed():`` the first call of the loop for a given cell and shape records the whole loop —
forward and backward — as two CUDA graphs (``torch.cuda.make_graphed_callables``), and every later call
replays them: one launch instead of thousands. The arithmetic is the same; ``tests/test_fast_sampling.py``
checks the draws and gradients against the plain loop on a GPU.

What replay requires, and why this is a context and not the default:

* static shapes: one graph per (batch, frames) shape, recorded on first use (a last, smaller batch records its own);
* the noise is an input (``eps``), drawn outside the graph, so replays are not all the same draw;
* the replayed backward hands out its gradient buffers: a parameter's first gradient may be such a buffer, so
  clear gradients by setting them to None (as every optimizer here does), not by zeroing them in place;
* **one forward per backward**: a replay overwrites the previous one's outputs and saved activations, so a
  graphed loop may be called once per loss (an SVI step of ``Trace_ELBO`` with one particle: the guide draws z
  once). ``train_prior`` uses it; inference code that calls a frozen prior's encoder several times does not.
"""

from __future__ import annotations

import warnings
import weakref
from contextlib import contextmanager

import torch
from torch import nn

_enabled = False
_graphs: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()


@contextmanager
def graphed(enabled: bool = True):
    """Within this context, guides sampling on a CUDA device with gradients on replay a recorded CUDA graph."""
    global _enabled
    previous, _enabled = _enabled, enabled
    try:
        yield
    finally:
        _enabled = previous


class _Loop(nn.Module):
    """The plain sampling loop of ``cell`` as a module of tensors only (what ``make_graphed_callables`` takes)."""

    def __init__(self, cell: nn.Module, has_rnn_ctx: bool, has_head_ctx: bool):
        super().__init__()
        self.cell, self.has = cell, (has_rnn_ctx, has_head_ctx)

    def forward(self, eps, *contexts):
        from ppl_models.dvae.sequence import unroll

        given = iter(contexts)
        rnn_ctx, head_ctx = (next(given) if has else None for has in self.has)
        with graphed(False):
            return unroll(self.cell, eps, rnn_ctx, head_ctx)


def graphed_unroll(cell: nn.Module, eps: torch.Tensor, rnn_ctx=None, head_ctx=None):
    """The graphed loop's z (B, T, Dz), or None where the plain loop must run (off, CPU, no gradients)."""
    if not _enabled or eps.device.type != "cuda" or not torch.is_grad_enabled():
        return None
    contexts = tuple(c for c in (rnn_ctx, head_ctx) if c is not None)
    key = (tuple(eps.shape), eps.dtype) + tuple((tuple(c.shape), c.dtype, c.requires_grad) for c in contexts)
    # what the graph reads from memory (frozen parameters, buffers) or takes as inputs: a change re-records
    key += tuple((t.data_ptr(), t.dtype, t.requires_grad) for t in (*cell.parameters(), *cell.buffers()))
    graphs = _graphs.setdefault(cell, {})
    if key not in graphs:
        graphs[key] = _record(cell, eps, contexts, rnn_ctx is not None, head_ctx is not None)
    return None if graphs[key] is None else graphs[key](eps, *contexts)


def recorded() -> int:
    """How many loops replay from a recorded graph now (for benchmarks: a failed recording runs un-graphed)."""
    return sum(loop is not None for graphs in _graphs.values() for loop in graphs.values())


def _record(cell, eps, contexts, has_rnn_ctx, has_head_ctx):
    """Record the loop's graphs on sample inputs like the real ones; None (with a warning) where CUDA refuses to
    record: the plain loop runs.

    The graphs take the cell's parameters as inputs, recorded on detached copies: a capture's backward never
    reaches the cell's own parameters, whose gradient accumulators may belong to a graph still alive on the
    default stream (the guide's earlier work in the same step): reaching one stalls the capture ("operation would
    make the legacy stream depend on a capturing blocking stream", seen on an H100). Each replay copies the
    parameters in, and the cell's own parameters get their gradients from the caller's backward, as usual."""
    module = _Loop(cell, has_rnn_ctx, has_head_ctx)
    trained = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    names, parameters = [n for n, _ in trained], [p for _, p in trained]
    num_inputs = 1 + len(contexts)

    def loop_of_parameters(*inputs):  # eps, *contexts, *parameters -> z
        return torch.func.functional_call(module, dict(zip(names, inputs[num_inputs:])), inputs[:num_inputs])

    replay, errors = None, []
    with torch.random.fork_rng(devices=[eps.device]):  # recording leaves the random numbers as they were
        samples = ((torch.randn_like(eps),) + tuple(torch.randn_like(c).requires_grad_(c.requires_grad)
                                                    for c in contexts)
                   + tuple(p.detach().clone().requires_grad_() for p in parameters))
        loop_of_parameters(*samples).sum().backward()  # one plain pass first: recording a backward as a
        torch.cuda.synchronize(eps.device)  # process's first one failed on an H100 (cudaErrorStreamCaptureImplicit)
        for mode in ("global", "thread_local"):  # thread_local: another thread's CUDA call cannot spoil it
            for t in samples:
                t.grad = None
            try:  # the stream context puts the current stream back where a failed capture leaves its own
                with torch.cuda.stream(torch.cuda.current_stream(eps.device)), _capture_error_mode(mode):
                    replay = torch.cuda.make_graphed_callables(loop_of_parameters, samples, allow_unused_input=True)
                break
            except RuntimeError as err:
                cause = err.__context__ or err  # capture_end's error follows the one that spoiled the capture
                errors.append(f"{mode}: {str(cause).splitlines()[0]}")
                torch.cuda.synchronize(eps.device)
    if replay is None:
        warnings.warn("could not record the guide's sampling loop as a CUDA graph (" + "; ".join(errors)
                      + "): running it from Python, several times slower (should the next random draw fail with "
                      "'Offset increment outside graph capture', run without graphs: train-prior --no-cuda-graphs)",
                      RuntimeWarning, stacklevel=3)
        return None
    return lambda eps, *contexts: replay(eps, *contexts, *parameters)


@contextmanager
def _capture_error_mode(mode: str):
    """``torch.cuda.make_graphed_callables`` with its captures in ``mode`` (it offers no argument for it)."""
    original = torch.cuda.graph

    class _Graph(original):
        capture_error_mode = mode

        def __init__(self, cuda_graph, pool=None, stream=None, **kwargs):
            super().__init__(cuda_graph, pool=pool, stream=stream, **{**kwargs, "capture_error_mode": mode})

    torch.cuda.graph = _Graph
    try:
        yield
    finally:
        torch.cuda.graph = original


def clear():
    """Forget every recorded graph (frees their memory pools)."""
    _graphs.clear()
