"""Helpers shared by the experiment notebooks: many runs at once, decision boundaries, paths.

`train_many` trains a batch of models in one compiled program: `jaxmlp.train_step` under
`jax.lax.scan` (the epochs) and `jax.vmap` (the models). Regularization strengths and optimizer
hyperparameters are pytree leaves in jaxmlp, so a sweep over them is a leading batch axis on the
`Regularization` and on the optimizer state, not a loop of recompiled runs.
"""

from __future__ import annotations

import os
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import jaxmlp as jm


def stack(trees):
    """Stack a list of pytrees with the same structure along a new leading axis."""
    return jax.tree.map(lambda *leaves: jnp.stack([jnp.asarray(v) for v in leaves]), *trees)


def unstack(tree, i):
    """The `i`-th entry of a pytree stacked with `stack`."""
    return jax.tree.map(lambda v: v[i], tree)


def reg_batch(rows, n_layers):
    """One `Regularization` per layer whose strengths are arrays with one entry per model.

    Args:
      rows: a list (one per model) of per-layer lists of ``(l1w, l1b, l2w, l2b)`` tuples.
      n_layers: number of layers.
    """
    out = []
    for l in range(n_layers):
        table = np.asarray([r[l] for r in rows], dtype=np.float32)  # (models, 4)
        out.append(jm.Regularization(*(jnp.asarray(table[:, j]) for j in range(4))))
    return tuple(out)


def train_many(net, opt, params, states, x, y, reg, *, epochs, loss, x_val, y_val, record_every=10):
    """Train a batch of models, full batch, for `epochs` steps each, in one compiled program.

    Every array argument carries a leading axis with one entry per model: ``params`` and
    ``states`` stacked with `stack`, ``x``/``y`` and ``x_val``/``y_val`` stacked data sets,
    ``reg`` from `reg_batch` (or None for no penalty).

    Returns:
      ``(params, history)``: the final parameters (stacked) and a dict of NumPy arrays of shape
      ``(models, epochs // record_every)``, measured after every `record_every`-th step:
      ``epoch``, ``loss`` (regularized), ``data_loss`` and ``accuracy`` on the training data,
      ``val_loss`` and ``val_accuracy`` on the validation data.
    """
    if epochs % record_every:
        raise ValueError(f"epochs ({epochs}) must be a multiple of record_every ({record_every})")
    final, history = _train_many(
        net,
        opt,
        epochs // record_every,
        record_every,
        loss,
        params,
        states,
        x,
        y,
        reg,
        x_val,
        y_val,
    )
    history = {k: np.asarray(v) for k, v in history.items()}
    history["epoch"] = np.arange(1, epochs // record_every + 1) * record_every
    return final, history


def _run_one(net, opt, records, record_every, loss, params, state, x, y, reg, x_val, y_val):
    def step(carry, _):
        params, state, _ = jm.train_step(net, opt, *carry, x, y, loss=loss, reg=reg)
        return (params, state), None

    def record(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=record_every)
        params = carry[0]
        total, parts = jm.objective(net, params, x, y, loss=loss, reg=reg)
        _, vparts = jm.objective(net, params, x_val, y_val, loss=loss)
        row = {
            "loss": total,
            "data_loss": parts["data"],
            "accuracy": jm.accuracy(jm.forward(net, params, x), y),
            "val_loss": vparts["data"],
            "val_accuracy": jm.accuracy(jm.forward(net, params, x_val), y_val),
        }
        return carry, row

    (params, _), history = jax.lax.scan(record, (params, state), None, length=records)
    return params, history


_train_many = jax.jit(
    jax.vmap(_run_one, in_axes=(None,) * 5 + (0,) * 7),
    static_argnums=(0, 1, 2, 3, 4),
)


def plot_decision_boundary(ax, net, params, x, y, title, *, resolution=200):
    """Colour the plane by the predicted class and scatter the points ``(x, y)`` on top."""
    x, y = np.asarray(x), np.asarray(y)
    lo, hi = x.min(axis=0) - 0.15, x.max(axis=0) + 0.15
    g0, g1 = np.meshgrid(
        np.linspace(lo[0], hi[0], resolution), np.linspace(lo[1], hi[1], resolution)
    )
    grid = np.stack([g0.ravel(), g1.ravel()], axis=1).astype(np.float32)
    pred = np.asarray(jnp.argmax(jm.predict(net, params, grid), axis=1)).reshape(g0.shape)
    ax.contourf(g0, g1, pred, levels=np.arange(-0.5, pred.max() + 1.0), cmap="brg", alpha=0.25)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="brg", s=8, edgecolors="none")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def output_dir():
    """Where a notebook writes files: ``$JAXMLP_EXPERIMENTS_OUT`` if set, else a new temp dir."""
    path = os.environ.get("JAXMLP_EXPERIMENTS_OUT")
    if path:
        os.makedirs(path, exist_ok=True)
        return path
    return tempfile.mkdtemp(prefix="jaxmlp-experiments-")
