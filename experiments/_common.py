"""Helpers shared by the experiment notebooks: decision boundaries and where files go.

Many runs at once are `jaxmlp.fit_many`'s job (the notebooks call it directly).
"""

from __future__ import annotations

import os
import tempfile

import jax.numpy as jnp
import numpy as np

import jaxmlp as jm


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
