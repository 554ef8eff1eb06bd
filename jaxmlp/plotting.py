"""Plots of training histories, a 2-D classifier's regions and a step sweep (needs matplotlib).

matplotlib is an optional extra (``pip install "jaxmlp[plot]"``); it is imported when a plot is
drawn, not when jaxmlp is imported.
"""

from __future__ import annotations

import os
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxmlp.finite_differences import EpsSweep
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


def _metric(histories: list[dict[str, np.ndarray]]) -> tuple[str, str]:
    """The headline metric of the histories and its title: R² for a regression, else accuracy."""
    return ("r2", "R²") if any("r2" in h for h in histories) else ("accuracy", "Accuracy")


def _metric_limits(ax, name: str, histories: list[dict[str, np.ndarray]]) -> None:
    """Accuracy on [0, 1]; R² up to 1, from its lowest value but no lower than -1."""
    if name == "accuracy":
        ax.set_ylim(0, 1.02)
        return
    values = [np.asarray(h[k]) for h in histories for k in ("r2", "val_r2") if k in h]
    finite = np.concatenate([v[np.isfinite(v)] for v in values]) if values else np.zeros(0)
    low = max(float(finite.min()), -1.0) if finite.size else 0.0
    ax.set_ylim(min(low, 0.0) - 0.02, 1.02)


def plot_history(history: dict[str, np.ndarray],
                 path: str | os.PathLike | None = None) -> Any:  # fmt: skip
    """Loss and accuracy per epoch, training and (when recorded) validation, side by side.

    A regression's history (one with ``r2``) gets three panels instead: the loss, R², and RMSE
    and MAE (in the units the history holds them: `jaxmlp train` writes the target's).

    Args:
      history: ``FitResult.history`` (or the ``history`` of ``history.json``).
      path: where to save a PNG; None to return the figure without saving.

    Returns:
      The matplotlib figure.
    """
    plt = _pyplot()
    epoch = np.asarray(history["epoch"])
    regression = "r2" in history
    fig, axes = plt.subplots(1, 3 if regression else 2, figsize=(15 if regression else 10, 4),
                             dpi=100)  # fmt: skip
    ax_loss, ax_metric = axes[0], axes[1]
    ax_loss.plot(epoch, history["loss"], label="train: total")
    ax_loss.plot(epoch, history["data_loss"], label="train: data", alpha=0.7)
    if "val_loss" in history:
        ax_loss.plot(epoch, history["val_loss"], label="validation: data")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_loss.legend()
    name, title = _metric([history])
    ax_metric.plot(epoch, history[name], label="train")
    if f"val_{name}" in history:
        ax_metric.plot(epoch, history[f"val_{name}"], label="validation")
    ax_metric.set(xlabel="epoch", ylabel=title, title=title)
    _metric_limits(ax_metric, name, [history])
    ax_metric.legend()
    if regression:
        ax = axes[2]
        for field, style in (("rmse", "-"), ("mae", ":")):
            ax.plot(epoch, history[field], linestyle=style, color="C0", label=f"train {field}")
            if f"val_{field}" in history:
                ax.plot(epoch, history[f"val_{field}"], linestyle=style, color="C1",
                        label=f"validation {field}")  # fmt: skip
        ax.set(xlabel="epoch", ylabel="error", title="RMSE (solid) and MAE (dotted)")
        ax.legend()
    return _finish(plt, fig, path)


PANELS_FROM = 13  # settings from which plot_histories draws one panel per setting


def plot_histories(histories: list[dict[str, np.ndarray]], labels: list[str],
                   path: str | os.PathLike | None = None, *,
                   settings: list[str] | None = None) -> Any:  # fmt: skip
    """Loss and accuracy (R² for a regression) per epoch of several models; validation dashed.

    The models of one setting (e.g. its seeds) share a colour and one legend entry, drawn
    outside the axes. With `PANELS_FROM` settings or more, one panel per setting instead,
    with the accuracy (or R²) of each of its models, titled by the setting.

    Args:
      histories: one history per model (``FitResult.history``, e.g. of ``result.model(k)``).
      labels: one label per model (its legend entry when it is its own setting).
      path: where to save a PNG; None to return the figure without saving.
      settings: per model, the label of its setting (None: every model its own).

    Returns:
      The matplotlib figure.
    """
    plt = _pyplot()
    settings = list(labels) if settings is None else list(settings)
    names = list(dict.fromkeys(settings))  # the settings in order of first appearance
    if len(names) >= PANELS_FROM:
        return _panels(plt, histories, settings, names, path)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(12, 4), dpi=100)
    tab10, cmap = plt.get_cmap("tab10"), plt.get_cmap("viridis")
    metric, title = _metric(histories)
    seen = set()
    for h, model_label, setting in zip(histories, labels, settings):
        if not len(h["epoch"]):
            continue
        i = names.index(setting)  # up to 10 settings in distinct colours, then a gradient
        color = tab10(i) if len(names) <= 10 else cmap(i / max(len(names) - 1, 1))
        count = settings.count(setting)
        entry = model_label if count == 1 else f"{setting} ({count} models)"
        ax_loss.plot(h["epoch"], h["loss"], color=color,
                     label=None if setting in seen else entry)  # fmt: skip
        seen.add(setting)
        ax_acc.plot(h["epoch"], h[metric], color=color)
        if "val_loss" in h:
            ax_loss.plot(h["epoch"], h["val_loss"], color=color, linestyle="--")
            ax_acc.plot(h["epoch"], h[f"val_{metric}"], color=color, linestyle="--")
    dashed = "; dashed: validation" if any("val_loss" in h for h in histories) else ""
    ax_loss.set(xlabel="epoch", ylabel="loss", title=f"Loss (solid: train{dashed})")
    ax_acc.set(xlabel="epoch", ylabel=title, title=title)
    _metric_limits(ax_acc, metric, histories)
    handles, entries = ax_loss.get_legend_handles_labels()
    ax_acc.legend(handles, entries, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0,
                  fontsize="small")  # fmt: skip
    return _finish(plt, fig, path)


def _panels(plt, histories, settings, names, path):
    """One panel per setting: each of its models' accuracy (or R²), validation dashed."""
    cols = min(len(names), 4)
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), dpi=100,
                             sharex=True, sharey=True, squeeze=False)  # fmt: skip
    metric, title = _metric(histories)
    for i, (ax, name) in enumerate(zip(axes.flat, names)):
        for h, setting in zip(histories, settings):
            if setting != name or not len(h["epoch"]):
                continue
            line = ax.plot(h["epoch"], h[metric], linewidth=1)[0]
            if f"val_{metric}" in h:
                ax.plot(h["epoch"], h[f"val_{metric}"], linestyle="--", linewidth=1,
                        color=line.get_color())  # fmt: skip
        ax.set_title(name, fontsize="small")
        ax.set(xlabel="epoch" if i >= len(names) - cols else "", ylabel=title if i % cols == 0
               else "")  # fmt: skip
    _metric_limits(axes.flat[0], metric, histories)
    for ax in list(axes.flat)[len(names) :]:
        ax.set_visible(False)
    fig.suptitle(f"{title} per setting (solid: train; dashed: validation)")
    return _finish(plt, fig, path)


def plot_decision_boundary(net: MLP, params: Params, x: Any, y: Any,
                           path: str | os.PathLike | None = None, *, ax: Any = None,
                           resolution: int = 200, title: str | None = None) -> Any:  # fmt: skip
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


def plot_eps_sweep(sweep: EpsSweep, ax: Any = None,
                   path: str | os.PathLike | None = None) -> Any:  # fmt: skip
    """The error of central differences against the step on log-log axes: the V curve.

    The median and the max relative error per step (`jaxmlp.finite_differences.eps_sweep`),
    the best step marked, faint guide lines of slope +2 (truncation, ``∝ ε²``) right of the
    minimum and −1 (rounding, ``∝ u·|f|/ε``) left of it, both through the minimum, and a dotted
    vertical line at ``u^(1/3)``.

    Args:
      sweep: what `eps_sweep` returned.
      ax: a matplotlib axes to draw into; None for a new figure.
      path: where to save a PNG (ignored when `ax` is given); None to skip saving.

    Returns:
      The matplotlib figure.
    """
    plt = _pyplot()
    own = ax is None
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100) if own else (ax.figure, ax)
    ax.loglog(sweep.eps, sweep.median_error, "o-", label="median error")
    ax.loglog(sweep.eps, sweep.max_error, "s--", alpha=0.7, label="max error")
    best, low = sweep.best_eps, sweep.min_error
    if np.isfinite(best):
        right, left = sweep.eps[sweep.eps >= best], sweep.eps[sweep.eps <= best]
        ax.loglog(right, low * (right / best) ** 2, color="gray", alpha=0.4, linewidth=1,
                  label="slope +2 (truncation)")  # fmt: skip
        ax.loglog(left, low * (best / left), color="gray", alpha=0.4, linestyle=":",
                  linewidth=1, label="slope −1 (rounding)")  # fmt: skip
        ax.loglog([best], [low], "*", color="C3", markersize=14, label=f"best ε = {best:.1e}")
    ax.axvline(sweep.predicted_best, color="gray", alpha=0.4, linestyle="-.",
               label=f"u^(1/3) = {sweep.predicted_best:.1e}")  # fmt: skip
    ax.set(xlabel="step ε", ylabel="relative error |d − a| / max(|a|, floor)",
           title=f"Central differences in {sweep.dtype} against jax.grad")  # fmt: skip
    ax.legend(fontsize="small")
    return _finish(plt, fig, path) if own else fig
