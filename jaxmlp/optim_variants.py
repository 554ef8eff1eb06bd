"""The known variants of jaxmlp's optimizers: how a transcription of their equations goes astray.

`jaxmlp.optimcheck` runs them beside a candidate optimizer and names the one it follows.
A variant is a name, a message and a step function ``(params, grads, state, t) -> (params,
state)``; one loop runs them all and one comparison judges them. Those marked [j] are jaxmlp
itself: the reference's own update with other hyperparameters in its state (they are data), or
the reference's factory with another structural flag; the others are transcribed below, in
NumPy, from their equations. ``v̂`` stands for what the square root divides by: Adam's ``v̂_t``,
RMSprop's ``S_t``, Adagrad's ``G_t``.

==============================  ==============  ============================================
variant                         reference       the candidate …
==============================  ==============  ============================================
eps_inside_root [j]             adaptive        adds ε inside the root, √(v̂ + ε)
eps_outside_root [j]            adaptive        adds ε outside the root, √v̂ + ε
no_bias_correction              adam(w)         uses m and v uncorrected
bias_correction_v_only          adam(w)         corrects v only: m̂ = m
bias_correction_m_only          adam(w)         corrects m only: v̂ = v
amsgrad [j]                     adam(w)         keeps AMSGrad's max of v_t (before correction)
no_amsgrad [j]                  AMSGrad         leaves AMSGrad's maximum out
amsgrad_max_after_correction    adam(w)         keeps the max of v̂_t (after correction)
l2_in_gradient                  adamw           adds λ·w to the gradient (torch's Adam)
no_weight_decay [j]             adamw           leaves the decay out
decay_every_leaf [j]            adamw           decays the leaves the mask spares (biases)
momentum_ema                    sgd, μ > 0      v = μ·v + (1 − μ)·g
momentum_book                   sgd, μ > 0      v = μ·v − η_t·g, w = w + v (the book's)
nesterov / no_nesterov [j]      sgd, μ > 0      switches Nesterov's look-ahead
centered / not_centered [j]     rmsprop         switches the centering
decay_from_step_1 [j]           inverse_time    counts the decay lr/(1 + d·t) from t = 1
==============================  ==============  ============================================

A variant that the stream cannot tell from the reference (the book's momentum with a constant
rate is jaxmlp's) is reported as such and never named as the match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxmlp import optim
from jaxmlp.schedules import InverseTime, is_schedule

Step = Callable[[Any, Any, Any, int], tuple[Any, Any]]
"""``step(params, grads, state, t) -> (params, state)``; ``t`` from 0, ``state`` None at t = 0."""

KINDS = {optim.SGDState: "sgd", optim.AdamState: "adam", optim.AdamWState: "adamw",
         optim.RMSPropState: "rmsprop", optim.AdagradState: "adagrad"}  # fmt: skip
FACTORIES: dict[str, Callable[..., optim.Optimizer]] = {
    "sgd": optim.sgd, "adam": optim.adam, "adamw": optim.adamw, "rmsprop": optim.rmsprop,
    "adagrad": optim.adagrad}  # fmt: skip
TITLES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop",
          "adagrad": "Adagrad"}  # fmt: skip
ROOTED = {"adam": "v̂", "adamw": "v̂", "rmsprop": "S", "adagrad": "G"}  # what the root divides by


def pair_step(init: Callable, update: Callable, check: Callable | None = None) -> Step:
    """``init`` and ``update`` as a step function; `check` judges what ``update`` returned.

    ``check(out, params, t, "update") -> (updates, state)`` raises for a result of the wrong
    form (`jaxmlp.optimcheck` checks a candidate's); by default the result is taken as it is.
    """

    def step(params: Any, grads: Any, state: Any, t: int) -> tuple[Any, Any]:
        out = update(grads, exact_state(init(params)) if t == 0 else state, params)
        updates, state = out if check is None else check(out, params, t, "update")
        return optim.apply_updates(params, updates), state

    return step


class Variant(NamedTuple):
    """Another reading of the reference's equations: its name, what it is, its step function."""

    name: str
    message: str
    step: Step


class Reference(NamedTuple):
    """The reference as its state tells it: kind, update, first state, structural flags.

    The first state holds float64 hyperparameters; the flags are what the state does not hold
    as data (nesterov, centered, amsgrad, the AdamW mask).
    """

    kind: str
    update: Callable
    state: Any
    flags: dict[str, Any]

    def hyper(self, name: str) -> np.ndarray:
        """A hyperparameter of the first state, as a float64 array."""
        return np.asarray(getattr(self.state, name))

    def lr(self, k: int) -> np.ndarray:
        """The rate of update `k` (from 0), as jaxmlp computes it: ``schedule(k)`` or the value."""
        lr = self.state.learning_rate
        return np.asarray(lr(jnp.asarray(k, jnp.int32)) if is_schedule(lr) else lr)

    def step(self, **changes: Any) -> Step:
        """The reference's own update, from its first state with some hyperparameters changed."""
        return pair_step(lambda _: self.state._replace(**changes), self.update)

    def rebuilt(self, **flags: Any) -> Step:
        """The reference's factory with its hyperparameters and other structural `flags`."""
        hypers = {name: getattr(self.state, name) for name in type(self.state).hyperparameters}
        opt = FACTORIES[self.kind](**hypers, **{**self.flags, **flags})
        return pair_step(opt.init, opt.update)

    def describe(self) -> str:
        """The reference as a call: ``adam(0.001, b1=0.9, …)``."""
        lr = self.state.learning_rate
        args = [f"inverse_time({_g(lr.lr0)}, {_g(lr.decay)})" if isinstance(lr, InverseTime)
                else f"{type(lr).__name__}(…)" if is_schedule(lr) else _g(lr)]  # fmt: skip
        hypers = [name for name in type(self.state).hyperparameters if name != "learning_rate"]
        args += [f"{name}={_g(getattr(self.state, name))}" for name in hypers]
        args += [f"{name}=True" for name, on in self.flags.items() if on is True]
        return f"{self.kind}({', '.join(args)})"


def reference_of(reference: Any, params: Any) -> Reference:
    """The reference read from its first state, its hyperparameters made float64 (`_exact`)."""
    state = reference.init(params) if isinstance(reference, optim.Optimizer) else None
    kind = KINDS.get(type(state))
    if kind is None:
        got = type(reference).__name__ if state is None else f"one whose state is {type(state)}"
        raise TypeError(
            "reference must be an optimizer made by jaxmlp.optim.sgd, adam, adamw, rmsprop or "
            f"adagrad; got {got}"
        )
    state = exact_state(state)
    return Reference(kind, reference.update, state, _flags(kind, reference.update, state, params))


def exact_state(state: Any) -> Any:
    """A jaxmlp state (or a chain's tuple of them) with its hyperparameters made float64.

    Any other state is returned as it is.
    """
    names = getattr(type(state), "hyperparameters", None)
    if names is not None:
        return state._replace(**{n: jax.tree.map(_exact, getattr(state, n)) for n in names})
    if type(state) is tuple:
        return tuple(map(exact_state, state))
    return state


def _exact(x: Any) -> Any:
    """A float leaf in float64, read back as the shortest decimal that rounds to it.

    A float32 ``0.999`` is 0.99900001287…; read back it is the 0.999 its author wrote, which a
    hand-written optimizer in float64 uses too.
    """
    a = np.asarray(x)
    return jnp.asarray(a.astype(str).astype(np.float64)) if a.dtype.kind == "f" else x


def _flags(kind: str, update: Callable, state: Any, params: Any) -> dict[str, Any]:
    """The structural choices of the reference: read from its state, or probed by one update."""
    if kind == "sgd":  # the first update of a unit gradient is −(1 + μ) with Nesterov, −1 without
        ones = jax.tree.map(jnp.ones_like, params)
        probe = state._replace(learning_rate=jnp.asarray(1.0), momentum=jnp.asarray(0.5))
        first = jax.tree.leaves(update(ones, probe, params)[0])
        return {"nesterov": bool(min(np.min(u, initial=0) for u in first) < -1.25)}
    if kind == "rmsprop":
        return {"centered": state.grad_avg is not None}
    if kind == "adagrad":
        return {}
    flags = {"amsgrad": state.nu_max is not None}
    if kind == "adamw":  # with zero gradients, a unit rate and λ = 1, a step is −w where it decays
        probe = state._replace(learning_rate=jnp.asarray(1.0), weight_decay=jnp.asarray(1.0))
        ones, zeros = jax.tree.map(jnp.ones_like, params), jax.tree.map(jnp.zeros_like, params)
        flags["mask"] = jax.tree.map(lambda u: np.asarray(u) != 0, update(zeros, probe, ones)[0])
    return flags


def variants(ref: Reference) -> list[Variant]:
    """The variants of the module's table that apply to `ref`."""
    builders = (_eps_variants, _adam_variants, _sgd_variants, _rmsprop_variants, _decay_variants)
    return [variant for build in builders for variant in build(ref)]


def _eps_variants(ref: Reference) -> list[Variant]:
    if ref.kind == "sgd" or np.any(ref.hyper("eps")) == np.any(ref.hyper("eps_root")):
        return []  # no ε to move: both are nonzero (or both 0, for an Adagrad with G_0 > 0)
    s, outside, inside = ROOTED[ref.kind], ref.state.eps, ref.state.eps_root
    name, what = ("eps_inside_root", f"ε inside the square root, √({s} + ε), as the seeds write "
                  "it") if not np.any(inside) else ("eps_outside_root", f"ε outside the square "
                  f"root, √{s} + ε, as PyTorch writes it")  # fmt: skip
    call = f"jaxmlp's {ref.kind}(eps={_g(inside)}, eps_root={_g(outside)})"
    return [Variant(name, f"{call}: {what}", ref.step(eps=inside, eps_root=outside))]


def _adam_variants(ref: Reference) -> list[Variant]:
    if ref.kind not in ("adam", "adamw"):
        return []
    kind, title, ams = ref.kind, TITLES[ref.kind], "before" if ref.flags["amsgrad"] else None
    out = [
        Variant("no_bias_correction", f"{title} without bias correction: m and v used as they are",
                _adam(ref, False, False, ams)),
        Variant("bias_correction_v_only", f"{title} with bias correction on v only: m̂ = m, not "
                "m/(1 − β1^t)", _adam(ref, False, True, ams)),
        Variant("bias_correction_m_only", f"{title} with bias correction on m only: v̂ = v, not "
                "v/(1 − β2^t)", _adam(ref, True, False, ams)),
        Variant("no_amsgrad", f"plain {title}, without AMSGrad's running maximum: jaxmlp's {kind}("
                "amsgrad=False)", ref.rebuilt(amsgrad=False)) if ams else
        Variant("amsgrad", "AMSGrad, the running maximum of v_t taken before bias correction: "
                f"jaxmlp's {kind}(amsgrad=True), as PyTorch's", ref.rebuilt(amsgrad=True)),
        Variant("amsgrad_max_after_correction", "AMSGrad with the maximum of v̂_t, taken after bias "
                "correction (PyTorch and jaxmlp take that of v_t, before)",
                _adam(ref, True, True, "after")),
    ]  # fmt: skip
    if kind == "adamw":
        lam, zero = _g(ref.state.weight_decay), jnp.zeros_like(ref.state.weight_decay)
        out += [
            Variant("l2_in_gradient", f"Adam with L2 in the gradient, g + λ·w with λ = {lam} "
                    "(torch.optim.Adam(weight_decay=λ)), not AdamW's decoupled decay",
                    _adam(ref, True, True, ams, l2=True)),
            Variant("no_weight_decay", "Adam without the weight decay: jaxmlp's adamw("
                    "weight_decay=0), that is adam", ref.step(weight_decay=zero)),
        ]  # fmt: skip
        if not all(np.all(m) for m in jax.tree.leaves(ref.flags["mask"])):
            every = ref.rebuilt(mask=lambda p: jax.tree.map(lambda _: True, p))
            out.append(Variant("decay_every_leaf", "AdamW decaying every leaf, the ones its mask "
                               "spares (biases) too, as torch.optim.AdamW over all parameters: "
                               "jaxmlp's adamw(mask=<every leaf>)", every))  # fmt: skip
    return out


def _sgd_variants(ref: Reference) -> list[Variant]:
    if ref.kind != "sgd" or not np.any(ref.hyper("momentum")):
        return []
    on = ref.flags["nesterov"]
    nesterov = "momentum without Nesterov's look-ahead" if on else "Nesterov momentum"
    return [
        Variant("momentum_ema", "SGD with momentum as a moving average, v = μ·v + (1 − μ)·g: "
                "steps 1 − μ times jaxmlp's v = μ·v + g (PyTorch's dampening=μ)", _sgd(ref, "ema")),
        Variant("momentum_book", "the book's momentum, v = μ·v − η_t·g and w = w + v: each "
                "gradient scaled by the rate of its own step, where jaxmlp and PyTorch scale the "
                "velocity by the current rate", _sgd(ref, "book")),
        Variant("no_nesterov" if on else "nesterov", f"{nesterov}: jaxmlp's sgd(nesterov="
                f"{not on})", ref.rebuilt(nesterov=not on)),
    ]  # fmt: skip


def _rmsprop_variants(ref: Reference) -> list[Variant]:
    if ref.kind != "rmsprop":
        return []
    on = ref.flags["centered"]
    name, what = ("not_centered", "RMSprop not centered, √S_t in place of √(S_t − ḡ_t²)") if on \
        else ("centered", "centered RMSprop, √(S_t − ḡ_t²) in place of √S_t")  # fmt: skip
    message = f"{what}: jaxmlp's rmsprop(centered={not on})"
    return [Variant(name, message, ref.rebuilt(centered=not on))]


def _decay_variants(ref: Reference) -> list[Variant]:
    lr = ref.state.learning_rate
    if not (isinstance(lr, InverseTime) and np.any(np.asarray(lr.decay) > 0)):
        return []
    # lr0/(1 + d·(t + 1)) = lr0'/(1 + d'·t) with lr0' = lr0/(1 + d), d' = d/(1 + d)
    later = InverseTime(lr.lr0 / (1 + lr.decay), lr.decay / (1 + lr.decay))
    first, call = _g(later.lr0), f"inverse_time({_g(later.lr0)}, {_g(later.decay)})"
    message = (f"the decay lr/(1 + d·t) counted from t = 1: the first update uses lr/(1 + d) = "
               f"{first}, not lr = {_g(lr.lr0)}; jaxmlp's {ref.kind}({call}) (jaxmlp's "
               "inverse_time counts from t = 0, as the book)")  # fmt: skip
    return [Variant("decay_from_step_1", message, ref.step(learning_rate=later))]


# ---------------------------------------------------------------------------------------------
# The variants transcribed from their equations, in NumPy


def _adam(ref: Reference, correct_m: bool, correct_v: bool, amsgrad: str | None,
          l2: bool = False) -> Step:  # fmt: skip
    """Adam or AdamW, each bias correction on or off, AMSGrad's max before or after it.

    Transcribed from the equations::

        g   = g + λ·w                          (l2: L2 in the gradient, not AdamW's decay)
        m_t = β1·m + (1 − β1)·g,   v_t = β2·v + (1 − β2)·g²
        m̂   = m_t / (1 − β1^t) (or m_t),   v̂ = v_t / (1 − β2^t) (or v_t)
        v̂   = max(v̂_max, v̂)                   (amsgrad "after"; "before": the max of v_t)
        w   = w − η_t·(m̂ / (√(v̂ + eps_root) + eps) + λ·w)     (AdamW, λ·w where the mask holds)
    """
    b1, b2, eps, eps_root = (ref.hyper(name) for name in ("b1", "b2", "eps", "eps_root"))
    lam = ref.hyper("weight_decay") if ref.kind == "adamw" else 0.0

    def leaf(w, g, decays, lr, t, m, v, v_max):
        g = g + lam * decays * w if l2 else g
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t) if correct_m else m
        bias = 1 - b2**t if correct_v else 1.0
        if amsgrad == "before":
            v_max = np.maximum(v_max, v)
            v_hat = v_max / bias
        elif amsgrad == "after":
            v_max = v_hat = np.maximum(v_max, v / bias)
        else:
            v_hat = v / bias
        step = m_hat / (np.sqrt(v_hat + eps_root) + eps) + (0.0 if l2 else lam * decays * w)
        return w - lr * step, m, v, v_max

    return _leafwise(ref, leaf, moments=3)


def _sgd(ref: Reference, form: str) -> Step:
    """SGD with momentum in the moving-average form (`form` "ema") or the book's ("book").

    Transcribed from the equations::

        ema:   v = μ·v + (1 − μ)·g,   w = w − η_t·v     (Nesterov: w − η_t·((1 − μ)·g + μ·v))
        book:  v = μ·v − η_t·g,       w = w + v         (Nesterov: w + μ·v − η_t·g)
    """
    mu, nesterov = ref.hyper("momentum"), ref.flags["nesterov"]

    def leaf(w, g, decays, lr, t, v):
        if form == "ema":
            g = (1 - mu) * g
            v = mu * v + g
            return w - lr * (g + mu * v if nesterov else v), v
        v = mu * v - lr * g
        return w + (mu * v - lr * g if nesterov else v), v

    return _leafwise(ref, leaf, moments=1)


def _leafwise(ref: Reference, leaf: Callable, moments: int) -> Step:
    """A step function of ``leaf(w, g, decays, lr, t, *moments) -> (w, *moments)``, leaf by leaf.

    ``decays`` is the AdamW mask's leaf (False for the others), ``lr`` the rate of the step and
    ``t`` the step counted from 1; each leaf's moments start at 0.
    """
    mask = ref.flags.get("mask")

    def step(params: Any, grads: Any, state: Any, k: int) -> tuple[Any, Any]:
        ws, tree = jax.tree.flatten(params)
        ws, gs = [np.asarray(w) for w in ws], [np.asarray(g) for g in jax.tree.leaves(grads)]
        decays = [False] * len(ws) if mask is None else jax.tree.leaves(mask)
        state = [[np.zeros_like(w)] * moments for w in ws] if k == 0 else state
        lr = ref.lr(k)
        new = [leaf(*args, lr, k + 1, *s) for *args, s in zip(ws, gs, decays, state)]
        return jax.tree.unflatten(tree, [n[0] for n in new]), [n[1:] for n in new]

    return step


def _g(x: Any) -> str:
    """A hyperparameter as text: ``0.001``, ``1e-08``; an array as a list."""
    a = np.asarray(x)
    return f"{a.item():g}" if a.size == 1 else str(a.tolist())
