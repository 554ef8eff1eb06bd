"""Optimizers written by hand as pure state transitions over pytrees, in the seeds' notation.

An optimizer is a pair of pure functions::

    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = apply_updates(params, updates)        # params + updates, leaf by leaf

Unlike optax, hyperparameters (learning rate, β, ε, …) live in the state as arrays, not in
the closures: changing one between steps (`set_hyperparams`) never recompiles a jitted step,
and `jax.vmap` over stacked states with different hyperparameters trains many models at once.
Only structural choices (``nesterov``, ``centered``, ``amsgrad``, the AdamW mask) are fixed
when the optimizer is made. Every ``learning_rate`` is a float or a schedule
(`jaxmlp.schedules`); update number ``k`` (0 for the first) uses ``schedule(k)``.

ε placement. Every adaptive optimizer divides by ``√(s + eps_root) + eps``: ``eps`` is added
outside the square root (PyTorch, the book), ``eps_root`` inside (the seeds, Keras, optax's
Adagrad and RMSprop). ``eps=0, eps_root=ε`` is the seeds' ``√(G_t + ε)``.

Transformations compose with `chain`: `clip_by_global_norm` before an optimizer rescales the
gradients; `proximal_l1` after it soft-thresholds the step so that L1 yields exact zeros. They
live in `jaxmlp.optim.transforms` and are re-exported here. Updates are cast to each parameter
leaf's dtype.

One module per optimizer: `base` (the `Optimizer` protocol, `apply_updates`, `set_hyperparams`,
`learning_rate_of` and the helpers they all share), `sgd`, `adagrad`, `rmsprop`, `adam` (Adam
and AdamW) and `transforms`. `STATE_TYPES` lists every state type they define.
"""

from jaxmlp.optim.adagrad import AdagradState, adagrad
from jaxmlp.optim.adam import AdamState, AdamWState, adam, adamw
from jaxmlp.optim.base import (
    Optimizer,
    OptState,
    Updates,
    apply_updates,
    check_state_matches,
    learning_rate_of,
    set_hyperparams,
)
from jaxmlp.optim.rmsprop import RMSPropState, rmsprop
from jaxmlp.optim.sgd import SGDState, sgd
from jaxmlp.optim.transforms import (
    ClipState,
    ProximalL1State,
    chain,
    clip_by_global_norm,
    proximal_l1,
)

STATE_TYPES = (
    SGDState, AdagradState, RMSPropState, AdamState, AdamWState, ClipState, ProximalL1State
)  # fmt: skip
"""Every optimizer and transformation state type of `jaxmlp.optim` (checkpoints hold these)."""

__all__ = [
    "STATE_TYPES", "AdagradState", "AdamState", "AdamWState", "ClipState", "OptState",
    "Optimizer", "ProximalL1State", "RMSPropState", "SGDState", "Updates",
    "adagrad", "adam", "adamw", "apply_updates", "chain", "check_state_matches",
    "clip_by_global_norm", "learning_rate_of", "proximal_l1", "rmsprop", "set_hyperparams", "sgd",
]  # fmt: skip
