"""The choices that were tuned by measurement, and the backends they were measured on.

Some of jaxmlp's forms were chosen because they measured faster on a CPU; on a backend where
no one has measured them, the plain form runs instead (`tuned`). The README's Speed section
lists the figures behind each.

- The column form of narrow nets (`jaxmlp.model.column_form`): the batch on the arrays'
  contiguous axis. Measured on x86 CPUs only; elsewhere the row form ``a @ W`` (the same
  numbers up to float rounding).

Not per backend, because they are part of what a run computes, not only how fast:

- The sort-free shuffle (`jaxmlp._epochs.permutation`): it decides which examples make each
  batch, so a run resumed on another machine sees the batches of one that never stopped.
- `jaxmlp.ensemble.fit_many`'s groups (`jaxmlp.memory`): chosen for memory, never for speed.
"""

from __future__ import annotations

import jax

MEASURED = ("cpu",)  # the backends whose figures chose the tuned forms


def tuned(platform: str | None = None) -> bool:
    """Whether the tuned forms run on `platform` (default: JAX's default backend)."""
    return (jax.default_backend() if platform is None else platform) in MEASURED
