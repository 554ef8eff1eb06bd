"""How these files were made: with jaxmlp 0.1.0 at commit 0f77a75, before the redesign.

``python tests/data/v0.1.0/make.py OUT`` (with that version installed) writes:

- ``run_epoch3/``: the output folder of a 3-epoch ``jaxmlp train`` (2-16-3 net, batches of 64);
- ``straight/``: ``metrics.csv`` and ``checkpoint.npz`` of the same run taken to 6 epochs at once;
- ``chain.npz``: a checkpoint whose optimizer state is a chain of clipping, SGD with a warmed-up
  inverse-time schedule and proximal L1, after two updates.

Later versions must load them, and resume ``run_epoch3`` to exactly ``straight``
(tests/test_checkpoint.py and tests/test_train_cli.py).
"""

import os
import sys

import jax
import jax.numpy as jnp

import jaxmlp as jm
from jaxmlp.cli import main


def make(out):
    """Write the three items into the folder `out`."""
    common = ["train", "--no-progress", "--no-plots", "--batch-size", "64", "--hidden", "16"]
    assert main([*common, "--epochs", "3", "--out", f"{out}/run_epoch3"]) == 0
    assert main([*common, "--epochs", "6", "--out", f"{out}/straight"]) == 0
    os.remove(f"{out}/straight/history.json")

    net = jm.MLP((2, 4, 3), ("relu", "softmax"))
    params = jm.init_params(jax.random.key(0), net)
    opt = jm.optim.chain(
        jm.optim.clip_by_global_norm(1.0),
        jm.optim.sgd(jm.schedules.warmup(jm.schedules.inverse_time(0.1, 1e-3), 2), momentum=0.9),
        jm.optim.proximal_l1(0.1, l1w=(1e-3, None)),
    )
    state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    for _ in range(2):
        updates, state = opt.update(grads, state, params)
        params = jm.apply_updates(params, updates)
    jm.save(f"{out}/chain.npz", net, params, state, key=jax.random.key(3), metadata={"steps": 2})


if __name__ == "__main__":
    make(sys.argv[1])
