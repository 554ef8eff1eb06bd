"""Model selection: `jaxmlp.cross_validate` against separate fits, and what halving saves.

    python benchmarks/bench_selection.py                 # spiral 3×100, 2-64-3, 5 folds
    python benchmarks/bench_selection.py --samples 101 --batch-size 32   # folds of 2 sizes

Cross-validation: k folds trained as k members of one `fit_many` program, against the loop a
researcher writes by hand, k calls of `jaxmlp.fit` on the same splits with the same initial
weights, shuffles and epochs (the same work; both shuffle). Two figures each: the first call
("cold": compiling included, in a fresh process the loop compiles once per distinct fold
size) and the median of ``--repeats`` later calls ("warm"). The ratio is separate / one
program.

Successive halving: K = 27 models (3 λ × 3 learning rates × 3 seeds), η = 3, first rung
``--epochs/9``: its wall time and model-epochs against training all 27 for every epoch in one
`fit_many` program.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxmlp as jm
from jaxmlp.ensemble import stack
from jaxmlp.optim import set_hyperparams

CCE = "categorical_crossentropy"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    jax.block_until_ready(jax.tree.leaves(out[:2] if isinstance(out, tuple) else out))
    return time.perf_counter() - start, out


def cross_validation(args, x, y, net, opt) -> None:
    kw = dict(loss=CCE, epochs=args.epochs, batch_size=args.batch_size, progress=False)
    key = jax.random.key(1)
    folds = jm.selection.fold_rows(jax.random.split(key, 3)[0], y, args.folds)
    _, init_key, shuffle_key = jax.random.split(key, 3)
    params = jm.init_params(jax.random.split(init_key, 1)[0], net)
    shuffle = jax.random.split(shuffle_key, 1)[0]

    def together():
        return jm.cross_validate(net, key, opt, x, y, folds=args.folds, **kw).fit

    def separate():
        return [jm.fit(net, params, opt, x[t], y[t], validation=(x[h], y[h]), key=shuffle, **kw)
                for t, h in folds]  # fmt: skip

    sizes = sorted({len(t) for t, _ in folds})
    cold = [timed(f)[0] for f in (together, separate)]
    warm = [
        statistics.median(timed(f)[0] for _ in range(args.repeats)) for f in (together, separate)
    ]
    print(f"cross-validation, {args.folds} folds (training sizes {sizes}), {args.epochs} epochs:")
    print(f"  cold: one program {cold[0]:.2f} s, separate fits {cold[1]:.2f} s, "
          f"ratio {cold[1] / cold[0]:.2f}")  # fmt: skip
    print(f"  warm: one program {warm[0]:.3f} s, separate fits {warm[1]:.3f} s, "
          f"ratio {warm[1] / warm[0]:.2f}")  # fmt: skip


def halving(args, x, y, net, opt) -> None:
    xv, yv = jm.spiral(jax.random.key(9), samples=100)
    K = 27
    grid = [
        (lam, lr, s) for lam in (0.0, 5e-4, 5e-3) for lr in (0.005, 0.02, 0.05) for s in range(3)
    ]
    starts = [jm.init_params(jax.random.key(s), net) for _, _, s in grid]
    params = stack(starts)
    state = stack(
        [set_hyperparams(opt.init(p), learning_rate=lr) for p, (_, lr, _) in zip(starts, grid)]
    )
    lam = jnp.asarray([g[0] for g in grid])
    kw = dict(loss=CCE, reg=(jm.Regularization(l2w=lam, l2b=lam), None), opt_state=state,
              batch_size=args.batch_size, validation=(xv, yv), progress=False)  # fmt: skip
    r = max(1, args.epochs // 9)
    times = {}
    for name, fn in (("halving", lambda: jm.successive_halving(net, params, opt, x, y, eta=3,
                                                               min_epochs=r, epochs=args.epochs,
                                                               **kw)),
                     ("all 27", lambda: jm.fit_many(net, params, opt, x, y, epochs=args.epochs,
                                                    **kw))):  # fmt: skip
        timed(fn)  # compile
        times[name], out = min((timed(fn) for _ in range(args.repeats)), key=lambda t: t[0])
        if name == "halving":
            result = out
    print(f"successive halving, K = {K}, η = 3, rungs {result.rungs}, {args.epochs} epochs:")
    best = int(result.survivors[0])
    print(
        f"  model-epochs {result.model_epochs} of {K * args.epochs} "
        f"({result.saved():.0%} saved); winner: model {best}, (λ, lr, seed) {grid[best]}"
    )
    print(f"  time: halving {times['halving']:.3f} s, all 27 {times['all 27']:.3f} s, "
          f"ratio {times['all 27'] / times['halving']:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=900)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100, help="spiral samples per class")
    args = parser.parse_args()
    x, y = jm.spiral(jax.random.key(0), samples=args.samples)
    x = np.asarray(x)
    net = jm.MLP((2, 64, 3), ("relu", "softmax"))
    opt = jm.optim.adam(0.02)
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    cross_validation(args, x, y, net, opt)
    halving(args, x, y, net, opt)


if __name__ == "__main__":
    main()
