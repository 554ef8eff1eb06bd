"""Plots of a training history and of a 2-D classifier's decision regions (needs matplotlib).

matplotlib is an optional extra (``pip install "jaxmlp[plot]"``); it is imported when a plot is
drawn, not when jaxmlp is imported.
"""

from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxmlp.metrics import predicted_class
from jaxmlp.model import MLP, Params, forward


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("plotting needs matplotlib: pip install 'jaxmlp[plot]'") from err
    return plt


def _finish(plt, fig, path: str | os.PathLike | None):
    """Lay `fig` out and, when `path` is given, save it as a PNG and close it; return `fig`."""
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
        plt.close(fig)
    return fig


def plot_history(history: dict[str, np.ndarray], path: str | os.PathLike | None = None):
    """Loss and accuracy per epoch, training and (when recorded) validation, side by side.

    Args:
      history: ``FitResult.history`` (or the ``history`` of ``history.json``).
      path: where to save a PNG; None to return the figure without saving.

    Returns:
      The matplotlib figure.
    """
    plt = _pyplot()
    epoch = np.asarray(history["epoch"])
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    ax_loss.plot(epoch, history["loss"], label="train: total")
    ax_loss.plot(epoch, history["data_loss"], label="train: data", alpha=0.7)
    if "val_loss" in history:
        ax_loss.plot(epoch, history["val_loss"], label="validation: data")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_loss.legend()
    ax_acc.plot(epoch, history["accuracy"], label="train")
    if "val_accuracy" in history:
        ax_acc.plot(epoch, history["val_accuracy"], label="validation")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    ax_acc.legend()
    return _finish(plt, fig, path)


def plot_histories(histories: list[dict[str, np.ndarray]], labels: list[str],
                   path: str | os.PathLike | None = None):  # fmt: skip
    """Loss and accuracy per epoch of several models, one colour each; validation dashed.

    Args:
      histories: one history per model (``FitResult.history``, e.g. of ``result.model(k)``).
      labels: one legend label per model (the legend is drawn for up to 12 models).
      path: where to save a PNG; None to return the figure without saving.

    Returns:
      The matplotlib figure.
    """
    plt = _pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4), dpi=100)
    cmap = plt.get_cmap("viridis")
    for k, (h, name) in enumerate(zip(histories, labels)):
        if not len(h["epoch"]):
            continue
        color = cmap(k / max(len(histories) - 1, 1))
        ax_loss.plot(h["epoch"], h["loss"], color=color, label=name)
        ax_acc.plot(h["epoch"], h["accuracy"], color=color)
        if "val_loss" in h:
            ax_loss.plot(h["epoch"], h["val_loss"], color=color, linestyle="--")
            ax_acc.plot(h["epoch"], h["val_accuracy"], color=color, linestyle="--")
    dashed = "; dashed: validation" if any("val_loss" in h for h in histories) else ""
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"Loss (solid: train{dashed})")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    if len(histories) <= 12:
        ax_loss.legend(fontsize="small")
    return _finish(plt, fig, path)


def plot_decision_boundary(net: MLP, params: Params, x: Any, y: Any,
                           path: str | os.PathLike | None = None, *, ax: Any = None,
                           resolution: int = 200, title: str | None = None):  # fmt: skip
    """The predicted class over the plane of a 2-input classifier, with the data on top.

    Args:
      net: an architecture with 2 inputs.
      params: its parameters.
      x: points ``(n, 2)``.
      y: their integer labels ``(n,)`` (or one-hot rows).
      path: where to save a PNG (ignored when `ax` is given); None to skip saving.
      ax: a matplotlib axes to draw into, e.g. for several models side by side.
      resolution: grid points per axis.
      title: the axes' title.

    Returns:
      The matplotlib figure.
    """
    if net.in_features != 2:
        raise ValueError(f"a decision boundary needs a net with 2 inputs; got {net.in_features}")
    plt = _pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap

    x, y = np.asarray(x), np.asarray(y)
    labels = y if y.ndim == 1 else np.asarray(predicted_class(jnp.asarray(y)))
    pad = 0.1 * (x.max(axis=0) - x.min(axis=0)) + 1e-6
    lo, hi = x.min(axis=0) - pad, x.max(axis=0) + pad
    gx, gy = np.meshgrid(*(np.linspace(a, b, resolution) for a, b in zip(lo, hi)))
    grid = jnp.asarray(np.c_[gx.ravel(), gy.ravel()], dtype=jnp.result_type(float))
    pred = np.asarray(predicted_class(forward(net, params, grid)))
    own = ax is None
    fig, ax = plt.subplots(figsize=(5, 5), dpi=100) if own else (ax.figure, ax)
    # Class c gets tab10's c-th colour (cycling past 10 classes) for its region and its points,
    # through the norm's band (c − ½, c + ½). Resampling tab10 to `classes` colours instead
    # would give blue, brown and cyan for 3 classes, hard to tell apart.
    classes = max(int(labels.max()), int(pred.max())) + 1
    levels = np.arange(classes + 1) - 0.5
    cmap = ListedColormap([plt.get_cmap("tab10")(c % 10) for c in range(classes)])
    norm = BoundaryNorm(levels, classes)
    ax.contourf(gx, gy, pred.reshape(gx.shape), levels=levels, cmap=cmap, norm=norm, alpha=0.3)
    ax.scatter(
        x[:, 0], x[:, 1], c=labels, cmap=cmap, norm=norm, s=12, edgecolors="k", linewidths=0.3
    )
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), aspect="equal")
    if title:
        ax.set_title(title)
    return _finish(plt, fig, path) if own else fig
