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


def test_vertical_blobs_are_centred_per_class():
    x, y = jm.datasets.vertical(jax.random.key(0), samples=2000, classes=3)
    for c in range(3):
        pts = np.asarray(x)[np.asarray(y) == c]
        np.testing.assert_allclose(pts.mean(axis=0), [c / 3, 0.5], atol=0.01)
        np.testing.assert_allclose(pts.std(axis=0), [0.1, 0.1], rtol=0.05)


def test_sine_is_the_book_formula():
    x, y = jm.datasets.sine(1000)
    assert x.shape == y.shape == (1000, 1)
    np.testing.assert_allclose(x[:, 0], np.arange(1000) / 1000, rtol=1e-6)
    np.testing.assert_allclose(y[:, 0], np.sin(2 * np.pi * np.arange(1000) / 1000), atol=1e-6)


def test_load_npz_and_csv(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 3)), rng.integers(0, 3, size=6)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    gx, gy = jm.datasets.load_arrays(tmp_path / "d.npz")
    np.testing.assert_array_equal(gx, x)
    np.testing.assert_array_equal(gy, y)
    lines = ["a,b,c,label"] + [",".join(map(str, [*row, lab])) for row, lab in zip(x, y)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    gx, gy = jm.datasets.load_arrays(tmp_path / "d.csv")
    np.testing.assert_allclose(gx, x, rtol=1e-6)
    assert gy.dtype == np.int32 and gy.tolist() == y.tolist()
    # Non-integer targets are regression targets of shape (n, 1).
    (tmp_path / "r.csv").write_text("1.0,0.5\n2.0,0.25\n")
    gx, gy = jm.datasets.load_arrays(tmp_path / "r.csv")
    assert gx.shape == (2, 1) and gy.tolist() == [[0.5], [0.25]]


@pytest.mark.parametrize(
    "name, content, error, match",
    [
        ("missing.npz", None, FileNotFoundError, r"data file not found: .*missing.npz"),
        ("d.txt", "1,2\n", ValueError, r"must end in .npz or .csv"),
        ("ragged.csv", "1,2,3\n4,5\n", ValueError, r"line 2 has 2 columns; expected 3"),
        ("words.csv", "1,2\nx,y\n", ValueError, r"line 2 is not all numbers"),
        ("nan.csv", "1,2\nnan,1\n", ValueError, r"x read from .*nan.csv must be finite"),
        ("broken.npz", b"PK\x03\x04 not really", ValueError, r"is not a readable .npz file"),
        ("empty.csv", "a,b\n", ValueError, r"holds no data rows"),
    ],
    ids=["missing", "extension", "ragged", "words", "nan", "broken_npz", "header_only"],
)
def test_load_arrays_errors(tmp_path, name, content, error, match):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(error, match=match):
        jm.datasets.load_arrays(path)


def test_load_npz_refuses_object_arrays_and_wrong_keys(tmp_path):
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(ValueError, match=r"holds object arrays, which are not loaded"):
        jm.datasets.load_arrays(tmp_path / "o.npz")
    np.savez(tmp_path / "k.npz", X=np.zeros((2, 2)), y=np.zeros(2))
    with pytest.raises(ValueError, match=r"has no array named 'x'; it holds \['X', 'y'\]"):
        jm.datasets.load_arrays(tmp_path / "k.npz")
    gx, _ = jm.datasets.load_arrays(tmp_path / "k.npz", x_key="X")
    assert gx.shape == (2, 2)


def test_standardize_split_one_hot():
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(100, 4))
    xs, (mean, std) = jm.datasets.standardize(x)
    np.testing.assert_allclose(np.asarray(xs).mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(xs).std(axis=0), 1, rtol=1e-5)
    xv, _ = jm.datasets.standardize(x[:10], mean, std)
    np.testing.assert_allclose(xv, xs[:10], rtol=1e-6)
    y = np.arange(100)
    (xt, yt), (xv, yv) = jm.datasets.train_val_split(jax.random.key(0), x, y, 0.25)
    assert xt.shape == (75, 4) and xv.shape == (25, 4)
    assert sorted(np.concatenate([yt, yv]).tolist()) == list(range(100))
    np.testing.assert_allclose(xt, x[np.asarray(yt)], rtol=1e-6)
    np.testing.assert_array_equal(jm.datasets.one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match=r"labels in \[0, 3\]; expected \[0, 2\]"):
        jm.datasets.one_hot(np.array([0, 3]), 3)
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\); got 1.5"):
        jm.datasets.train_val_split(jax.random.key(0), x, y, 1.5)


def test_digits_from_scikit_learn():
    x, y = jm.datasets.digits()
    assert x.shape == (1797, 64) and y.shape == (1797,)
    assert x.min() == 0 and x.max() == 16 and sorted(set(y.tolist())) == list(range(10))
