"""Independent NumPy references, written literally from the seed equations (float64).

Nothing here imports jaxmlp: these are the truths the package is compared with.
"""

import numpy as np


def sigmoid(z):
    # Stable: exp of a non-positive number only.
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ACTIVATIONS = {
    "linear": lambda z: z,
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "softmax": softmax,
}


def forward(Ws, bs, acts, x):
    """Layer by layer: HI = X·W + B, HO = σ(HI). Returns (pre-activations, activations)."""
    his, hos = [], [x]
    for W, b, name in zip(Ws, bs, acts):
        hi = hos[-1] @ W + b
        his.append(hi)
        hos.append(ACTIVATIONS[name](hi))
    return his, hos


def one_hot(y, classes):
    out = np.zeros((len(y), classes))
    out[np.arange(len(y)), y] = 1.0
    return out


def data_loss(loss, out_act, z, a, y):
    """The book's losses; softmax/sigmoid cross-entropy from logits, other pairs clipped."""
    if loss == "mse":
        return np.mean((y - a) ** 2)
    if loss == "mae":
        return np.mean(np.abs(y - a))
    if loss == "binary_crossentropy":
        if out_act == "sigmoid":
            # -[y log σ(z) + (1-y) log(1-σ(z))] with log σ(z) = -log(1+e^{-z})
            log_p = -np.logaddexp(0, -z)
            log_q = -np.logaddexp(0, z)
        else:
            p = np.clip(a, 1e-7, 1 - 1e-7)
            log_p, log_q = np.log(p), np.log(1 - p)
        return -np.mean(y * log_p + (1 - y) * log_q)
    # categorical
    t = one_hot(y, a.shape[1]) if y.ndim == 1 else y
    if out_act == "softmax":
        m = z.max(axis=1, keepdims=True)
        logp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    else:
        logp = np.log(np.clip(a, 1e-7, 1 - 1e-7))
    return -np.mean(np.sum(t * logp, axis=1))


def penalty(Ws, bs, regs):
    """The seeds' calculate_loss terms, per layer: l1w·Σ|w| + l1b·Σ|b| + l2w·Σw² + l2b·Σb²."""
    total = 0.0
    for W, b, (l1w, l1b, l2w, l2b) in zip(Ws, bs, regs):
        total += l1w * np.sum(np.abs(W)) + l1b * np.sum(np.abs(b))
        total += l2w * np.sum(W**2) + l2b * np.sum(b**2)
    return total
