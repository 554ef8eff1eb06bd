"""How many models `jaxmlp.ensemble.fit_many` runs at once: a memory estimate and a group size.

`fit_many` runs K models under one `jax.vmap`; every array of a training step then has a models
axis, and the memory a step needs grows with K. `estimate` counts what one compiled epoch holds
(parameters, optimizer states, the epoch's gathered batches, a step's activations and
gradients) and `group_size` picks how many models run side by side: all K when they fit in
the device's memory (`device_memory`), else the largest divisor of K that does, the groups
running one after another in the same program (`jaxmlp._epochs.in_groups`). When not even one
model at a time fits, `fit_many` refuses to start, with the estimate in its message.

The estimate is an upper bound of the arrays the program keeps live, not a measurement of
XLA's allocations; `MEMORY_SHARE` of the device's memory is what it may fill.

Measured on a 2-core x86 CPU (``benchmarks/bench_many.py --group G``): groups smaller than K do
not make 32 tiny models faster (the step's kernels cost more per call than the cache saves), so
the automatic choice never groups for speed, on any backend; ``group_size=`` sets it by hand.
"""

from __future__ import annotations

import math
import os
from typing import Any, NamedTuple

import jax
import numpy as np

from jaxmlp.model import MLP

MEMORY_SHARE = 0.8  # of the device's memory, the most the estimate may fill
ACTIVATION_COPIES = 4  # per layer and example: z, a, δ and the gradient flowing back


class Breakdown(NamedTuple):
    """`estimate`'s bytes: per model (its state, its gathered data, a step's arrays) and shared."""

    state: int
    data: int
    step: int
    shared: int
    models: int

    def live(self, group: int) -> int:
        """Bytes live at once with `group` models side by side (every model's state is kept)."""
        return self.shared + self.models * self.state + group * (self.data + self.step)

    def text(self, group: int) -> str:
        """The estimate for `group`, in words."""
        return (f"{_mib(self.live(group))} ({self.models} models' parameters and optimizer "
                f"states {_mib(self.models * self.state)}, {group} at once × "
                f"{_mib(self.data + self.step)} of batches and activations, "
                f"{_mib(self.shared)} shared data)")  # fmt: skip


def estimate(net: MLP, params: Any, opt_state: Any, *, n: int, batch_size: int, n_val: int,
             per_model_data: bool, dtype: Any, models: int) -> Breakdown:  # fmt: skip
    """The memory of `fit_many`'s epoch for `models` models of `net`.

    Args:
      net: the architecture.
      params: one model's parameters, or their shapes (`jax.eval_shape` results do).
      opt_state: one model's optimizer state, or its shapes.
      n: rows of the training data.
      batch_size: examples per step.
      n_val: rows of the validation data (0 without): each model's forward pass over them.
      per_model_data: whether each model gathers its own copy of the epoch's rows (K shuffle
        keys, or `rows=`); else the gather is shared.
      dtype: the data's dtype.
      models: K.
    """
    item = np.dtype(dtype).itemsize
    tree_bytes = sum(math.prod(a.shape) * np.dtype(a.dtype).itemsize
                     for a in jax.tree.leaves((params, opt_state)))  # fmt: skip
    rows = n * (net.in_features + net.out_features) * item  # the data, or one gathered copy
    return Breakdown(
        state=2 * tree_bytes,  # kept and updated: a model that diverges keeps its last state
        data=rows if per_model_data else 0,
        step=max(batch_size * ACTIVATION_COPIES, n_val) * sum(net.sizes) * item,
        shared=rows if per_model_data else 2 * rows,  # the data, and its shared gather
        models=models,
    )


def _mib(b: float) -> str:
    if b < 2**20:
        return f"{b / 2**10:.0f} KiB"
    return f"{b / 2**20:.1f} MiB" if b < 2**30 else f"{b / 2**30:.2f} GiB"


def device_memory(device: jax.Device | None = None) -> int | None:
    """Bytes of memory of `device` (default: the first device), or None when unknown.

    An accelerator reports its limit (``memory_stats()["bytes_limit"]``); for a CPU, the host's
    physical memory.
    """
    device = jax.devices()[0] if device is None else device
    stats = None
    try:
        stats = device.memory_stats()
    except (NotImplementedError, RuntimeError, jax.errors.JaxRuntimeError):
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    if device.platform == "cpu" and hasattr(os, "sysconf"):
        try:
            return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        except (ValueError, OSError):
            return None
    return None


def group_size(breakdown: Breakdown, requested: int | None, memory: int | None) -> int:
    """How many of the K models run side by side: `requested`, or the largest that fits.

    Args:
      breakdown: `estimate`'s result.
      requested: `fit_many`'s ``group_size`` (a divisor of K), or None to choose.
      memory: the device's bytes (`device_memory`), or None when unknown (then all K).

    Raises:
      ValueError: `requested` is not a positive divisor of K, or even one model at a time
        would need more than `MEMORY_SHARE` of `memory`.
    """
    K = breakdown.models
    divisors = [g for g in range(1, K + 1) if K % g == 0]
    if requested is not None:
        if (
            not isinstance(requested, (int, np.integer))
            or isinstance(requested, bool)
            or (requested < 1 or K % requested)
        ):
            listed = ", ".join(map(str, divisors))
            raise ValueError(f"group_size must be a divisor of the K = {K} models ({listed}) "
                             f"or None; got {requested!r}")  # fmt: skip
        return int(requested)
    if memory is None:
        return K
    budget = MEMORY_SHARE * memory
    for g in reversed(divisors):
        if breakdown.live(g) <= budget:
            return g
    raise ValueError(
        f"fit_many: {K} models of this net need about {breakdown.text(1)} even one at a time, "
        f"more than {MEMORY_SHARE:.0%} of the device's {_mib(memory)}: train fewer models per "
        "call, smaller batches, or split the models over devices (mesh=)"
    )
