"""The peers `run.py` measures jaxmlp against, each written as its users would write it.

Every implementation trains the same MLP (ReLU hidden layers, linear logits) on the same
objective — mean softmax cross-entropy plus ``l2·Σ W²`` over the weights (not the biases) — with
Adam, from the same initial weights, and exposes the same two methods:

- ``check(xs, ys, epochs)``: train from the initial weights over the fixed-order batches
  ``xs[i], ys[i]`` for `epochs` epochs; return each epoch's mean loss, measured (as usual) before
  each step's update. The harness compares these across implementations.
- ``train(epochs)``: train `epochs` epochs on the full data, reshuffled every epoch, continuing
  from the current state; return when the work is done (device work included).

A peer whose library is not installed is skipped by the harness. Nothing here is a dependency
of jaxmlp: install them with ``pip install -e ".[bench]"``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Problem:
    """A workload's data, initial weights and hyperparameters, shared by every implementation."""

    sizes: tuple[int, ...]
    batch: int
    x: np.ndarray  # (n, sizes[0]) float32; n = batches · batch
    y: np.ndarray  # (n,) int32 labels
    params: tuple[tuple[np.ndarray, np.ndarray], ...]  # ((W (fan_in, fan_out), b (fan_out,)), ...)
    lr: float = 1e-3
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    l2: float = 5e-4  # on weights only
    shuffle: bool = True  # reshuffle every epoch (False: the same batch order every epoch)
    fit_shuffle: bool = True  # jaxmlp's fit reshuffles (run.py --peers-fixed: only it does)

    @property
    def n(self) -> int:
        return self.x.shape[0]

    @property
    def n_batches(self) -> int:
        return self.n // self.batch


# ---------------------------------------------------------------------------------------------
# NumPy by hand


class NumpyMLP:
    """Forward, backward and Adam written out in NumPy, float32, updated in place."""

    name = "NumPy by hand"

    def __init__(self, pb: Problem, seed: int = 0):
        self.pb = pb
        self.rng = np.random.default_rng(seed)
        self.reset()

    def reset(self):
        self.W = [w.copy() for w, _ in self.pb.params]
        self.b = [b.copy() for _, b in self.pb.params]
        self.mW = [np.zeros_like(w) for w in self.W]
        self.vW = [np.zeros_like(w) for w in self.W]
        self.mb = [np.zeros_like(b) for b in self.b]
        self.vb = [np.zeros_like(b) for b in self.b]
        self.t = 0

    def step(self, x, y):
        pb = self.pb
        acts = [x]
        for l, (W, b) in enumerate(zip(self.W, self.b)):
            z = acts[-1] @ W
            z += b
            if l < len(self.W) - 1:
                np.maximum(z, 0, out=z)
            acts.append(z)
        z = acts[-1]
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= z.sum(axis=1, keepdims=True)  # now softmax probabilities
        rows = np.arange(len(y))
        data = -np.mean(np.log(z[rows, y]))
        pen = pb.l2 * sum(float(np.vdot(W, W)) for W in self.W)
        delta = z
        delta[rows, y] -= 1
        delta /= len(y)
        self.t += 1
        c1, c2 = 1 - pb.b1**self.t, 1 - pb.b2**self.t
        for l in reversed(range(len(self.W))):
            W = self.W[l]
            dW = acts[l].T @ delta
            dW += (2 * pb.l2) * W
            db = delta.sum(axis=0)
            if l > 0:
                delta = delta @ W.T
                delta *= acts[l] > 0
            for p, g, m, v in (
                (W, dW, self.mW[l], self.vW[l]),
                (self.b[l], db, self.mb[l], self.vb[l]),
            ):
                m *= pb.b1
                m += (1 - pb.b1) * g
                v *= pb.b2
                v += (1 - pb.b2) * (g * g)
                p -= (pb.lr / c1) * m / (np.sqrt(v / c2) + pb.eps)
        return data + pen

    def check(self, xs, ys, epochs):
        self.reset()
        return [float(np.mean([self.step(x, y) for x, y in zip(xs, ys)])) for _ in range(epochs)]

    def train(self, epochs):
        pb = self.pb
        for _ in range(epochs):
            xs, ys = pb.x, pb.y
            if pb.shuffle:
                order = self.rng.permutation(pb.n)
                xs, ys = xs[order], ys[order]
            for i in range(0, pb.n, pb.batch):
                self.step(xs[i : i + pb.batch], ys[i : i + pb.batch])


# ---------------------------------------------------------------------------------------------
# PyTorch eager


class TorchMLP:
    """`torch.nn.Sequential` of Linear and ReLU, `F.cross_entropy`, `torch.optim.Adam`."""

    name = "PyTorch eager"

    def __init__(self, pb: Problem, seed: int = 0):
        import torch

        self.torch, self.pb = torch, pb
        self.gen = torch.Generator().manual_seed(seed)
        self.x, self.y = torch.from_numpy(pb.x), torch.from_numpy(pb.y.astype(np.int64))
        self.reset()

    def reset(self):
        torch, pb = self.torch, self.pb
        layers = []
        for l, (W, b) in enumerate(pb.params):
            lin = torch.nn.Linear(*W.shape)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(W.T.copy()))
                lin.bias.copy_(torch.from_numpy(b))
            layers.append(lin)
            if l < len(pb.params) - 1:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        self.weights = [m.weight for m in self.model if isinstance(m, torch.nn.Linear)]
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=pb.lr, betas=(pb.b1, pb.b2), eps=pb.eps
        )

    def step(self, x, y):
        F = self.torch.nn.functional
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(x), y) + self.pb.l2 * sum(
            (w * w).sum() for w in self.weights
        )
        loss.backward()
        self.opt.step()
        return loss

    def check(self, xs, ys, epochs):
        self.reset()
        torch = self.torch
        xs, ys = torch.from_numpy(np.asarray(xs)), torch.from_numpy(np.asarray(ys, np.int64))
        return [
            float(np.mean([self.step(x, y).item() for x, y in zip(xs, ys)])) for _ in range(epochs)
        ]

    def train(self, epochs):
        torch, pb = self.torch, self.pb
        for _ in range(epochs):
            xs, ys = self.x, self.y
            if pb.shuffle:
                order = torch.randperm(pb.n, generator=self.gen)
                xs, ys = xs[order], ys[order]
            for i in range(0, pb.n, pb.batch):
                self.step(xs[i : i + pb.batch], ys[i : i + pb.batch])


# ---------------------------------------------------------------------------------------------
# JAX + optax


def _jax_loss(apply, l2):
    import jax.numpy as jnp
    import optax

    def loss(params, weights, x, y):
        logits = apply(params, x)
        data = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return data + l2 * sum(jnp.sum(W * W) for W in weights(params))

    return loss


def _plain_apply(params, x):
    import jax

    for l, (W, b) in enumerate(params):
        x = x @ W + b
        if l < len(params) - 1:
            x = jax.nn.relu(x)
    return x


def shuffled_batches(n_batches: int, shuffle: bool = True):
    """A jitted ``(key, x, y) -> ((xb, yb), ...)``: one dispatch per epoch for step loops."""
    import jax

    @jax.jit
    def batches(key, x, y):
        if shuffle:
            order = jax.random.permutation(key, x.shape[0])
            x, y = x[order], y[order]
        xs = x.reshape(n_batches, -1, x.shape[1])
        ys = y.reshape(n_batches, -1)
        return tuple((xs[i], ys[i]) for i in range(n_batches))

    return batches


class _JaxPeer:
    """Shared by the JAX peers: device data, an optax Adam, epochs keyed by fold_in."""

    def __init__(self, pb: Problem, seed: int = 0):
        import jax
        import jax.numpy as jnp
        import optax

        self.jax, self.jnp, self.optax, self.pb = jax, jnp, optax, pb
        self.key = jax.random.key(seed)
        self.x, self.y = jnp.asarray(pb.x), jnp.asarray(pb.y)
        self.tx = optax.adam(pb.lr, b1=pb.b1, b2=pb.b2, eps=pb.eps)
        self.epoch = 0
        self.reset()

    def reset(self):
        self.params = self.init_params()
        self.state = self.tx.init(self.params)

    def next_key(self):
        self.epoch += 1
        return self.jax.random.fold_in(self.key, self.epoch)


class OptaxStep(_JaxPeer):
    """A `jax.jit` step (value_and_grad, optax Adam) with donated buffers, called per batch."""

    name = "JAX+optax jit/step"

    def __init__(self, pb, seed=0):
        super().__init__(pb, seed)
        loss = _jax_loss(_plain_apply, pb.l2)
        weights = lambda p: [W for W, _ in p]  # noqa: E731
        jax, optax, tx = self.jax, self.optax, self.tx

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def step(params, state, x, y):
            value, g = jax.value_and_grad(loss)(params, weights, x, y)
            updates, state = tx.update(g, state, params)
            return optax.apply_updates(params, updates), state, value

        self.step = step
        self.shuffle = shuffled_batches(pb.n_batches, pb.shuffle)

    def init_params(self):
        return tuple((self.jnp.asarray(W), self.jnp.asarray(b)) for W, b in self.pb.params)

    def check(self, xs, ys, epochs):
        self.reset()
        out = []
        for _ in range(epochs):
            losses = []
            for x, y in zip(xs, ys):
                self.params, self.state, v = self.step(self.params, self.state, x, y)
                losses.append(float(v))
            out.append(float(np.mean(losses)))
        return out

    def train(self, epochs):
        for _ in range(epochs):
            for xb, yb in self.shuffle(self.next_key(), self.x, self.y):
                self.params, self.state, _ = self.step(self.params, self.state, xb, yb)
        self.jax.block_until_ready(self.params)


class OptaxScan(OptaxStep):
    """One `jax.jit` call per epoch: shuffle, then `lax.scan` of the step over the batches."""

    name = "JAX+optax epoch scan"

    def __init__(self, pb, seed=0):
        super().__init__(pb, seed)
        jax, jnp = self.jax, self.jnp
        loss = _jax_loss(_plain_apply, pb.l2)
        weights = lambda p: [W for W, _ in p]  # noqa: E731
        tx, optax = self.tx, self.optax

        def body(carry, batch):
            params, state = carry
            value, g = jax.value_and_grad(loss)(params, weights, *batch)
            updates, state = tx.update(g, state, params)
            return (optax.apply_updates(params, updates), state), value

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def epoch(params, state, key, x, y):
            if pb.shuffle:
                order = jax.random.permutation(key, x.shape[0])
                x, y = x[order], y[order]
            xs = x.reshape(pb.n_batches, pb.batch, -1)
            ys = y.reshape(pb.n_batches, pb.batch)
            (params, state), values = jax.lax.scan(body, (params, state), (xs, ys))
            return params, state, values

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def fixed(params, state, xs, ys):
            (params, state), values = jax.lax.scan(body, (params, state), (xs, ys))
            return params, state, jnp.mean(values)

        self.epoch_fn, self.fixed = epoch, fixed

    def check(self, xs, ys, epochs):
        self.reset()
        xs, ys = self.jnp.asarray(xs), self.jnp.asarray(ys)
        out = []
        for _ in range(epochs):
            self.params, self.state, v = self.fixed(self.params, self.state, xs, ys)
            out.append(float(v))
        return out

    def train(self, epochs):
        for _ in range(epochs):
            self.params, self.state, _ = self.epoch_fn(
                self.params, self.state, self.next_key(), self.x, self.y
            )
        self.jax.block_until_ready(self.params)


class FlaxStep(OptaxStep):
    """A Flax linen MLP (``nn.Dense`` + ``nn.relu``), optax Adam, a jitted donated step."""

    name = "Flax linen+optax"

    def __init__(self, pb, seed=0):
        import flax.linen as nn

        sizes = pb.sizes

        class MLP(nn.Module):
            @nn.compact
            def __call__(self, x):
                for l, width in enumerate(sizes[1:]):
                    x = nn.Dense(width)(x)
                    if l < len(sizes) - 2:
                        x = nn.relu(x)
                return x

        self.module = MLP()
        _JaxPeer.__init__(self, pb, seed)
        jax, optax, tx = self.jax, self.optax, self.tx
        loss = _jax_loss(self.module.apply, pb.l2)

        def weights(p):
            return [layer["kernel"] for layer in p["params"].values()]

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def step(params, state, x, y):
            value, g = jax.value_and_grad(loss)(params, weights, x, y)
            updates, state = tx.update(g, state, params)
            return optax.apply_updates(params, updates), state, value

        self.step = step
        self.shuffle = shuffled_batches(pb.n_batches, pb.shuffle)

    def init_params(self):
        jnp = self.jnp
        layers = {
            f"Dense_{l}": {"kernel": jnp.asarray(W), "bias": jnp.asarray(b)}
            for l, (W, b) in enumerate(self.pb.params)
        }
        shapes = self.module.init(self.jax.random.key(0), jnp.zeros((1, self.pb.sizes[0])))
        got = self.jax.tree.map(lambda a: a.shape, shapes)
        want = self.jax.tree.map(lambda a: a.shape, {"params": layers})
        assert got == want, (got, want)
        return {"params": layers}


PEERS = {
    "numpy": NumpyMLP,
    "torch": TorchMLP,
    "optax_step": OptaxStep,
    "optax_scan": OptaxScan,
    "flax": FlaxStep,
}
MODULES = {"torch": "torch", "optax_step": "optax", "optax_scan": "optax", "flax": "flax"}
