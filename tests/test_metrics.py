import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp as jm

PROBS = jnp.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3], [0.5, 0.1, 0.4]])


def test_accuracy_with_labels_and_one_hot():
    labels = jnp.array([0, 2, 2, 1])  # right, right, wrong, wrong
    assert float(jm.accuracy(PROBS, labels)) == 0.5
    assert float(jm.accuracy(PROBS, jnp.eye(3)[labels])) == 0.5


def test_binary_accuracy_thresholds_at_one_half():
    out = jnp.array([[0.9], [0.4], [0.6], [0.1]])
    y = jnp.array([[1.0], [1.0], [0.0], [0.0]])
    np.testing.assert_allclose(jm.accuracy(out, y), 0.5)


@pytest.mark.parametrize(
    "outputs, y, match",
    [
        (
            PROBS,
            jnp.zeros(5, int),
            r"y must be labels of shape \(4,\) or one-hot rows of shape \(4, 3\); got \(5,\)",
        ),
        (PROBS[:, :1], jnp.zeros(4), r"y must have shape \(4, 1\) for one output; got \(4,\)"),
        (PROBS[0], jnp.zeros(4), r"outputs must have shape \(batch, outputs\); got \(3,\)"),
    ],
    ids=["label_count", "binary_shape", "outputs_1d"],
)
def test_accuracy_rejects_bad_shapes(outputs, y, match):
    with pytest.raises(ValueError, match=match):
        jm.accuracy(outputs, y)
