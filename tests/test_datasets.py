import jax
import numpy as np
import pytest

import jaxmlp as jm


def test_spiral_follows_the_book_formula():
    x, y = jm.spiral(jax.random.key(0), samples=50, classes=4, noise=0.0)
    assert x.shape == (200, 2) and y.shape == (200,) and y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(np.asarray(y)), [50] * 4)
    # Without noise the formula is deterministic: check it literally for class 2.
    r = np.linspace(0.0, 1.0, 50)
    t = np.linspace(8.0, 12.0, 50)
    expected = np.c_[r * np.sin(t * 2.5), r * np.cos(t * 2.5)]
    np.testing.assert_allclose(x[100:150], expected, rtol=1e-5, atol=1e-6)


def test_spiral_noise_and_key():
    a, _ = jm.spiral(jax.random.key(0))
    b, _ = jm.spiral(jax.random.key(0))
    c, _ = jm.spiral(jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Points stay within the unit disc's radius r ∈ [0, 1].
    np.testing.assert_array_less(np.linalg.norm(np.asarray(a), axis=1), 1 + 1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"samples": 0}, r"samples must be a positive integer; got 0"),
        ({"classes": 2.0}, r"classes must be a positive integer; got 2.0"),
        ({"noise": -1.0}, r"noise must be >= 0; got -1.0"),
    ],
    ids=["samples", "classes", "noise"],
)
def test_spiral_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        jm.spiral(jax.random.key(0), **kwargs)
