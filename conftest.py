"""Test configuration for tests/ and the doctests in jaxmlp/: strict JAX settings."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmlp

# Implicit rank promotion hides broadcasting bugs (b of shape (n,) against (batch, n) must be
# explicit); the library is written to run under this setting.
jax.config.update("jax_numpy_rank_promotion", "raise")

# The command lines the tests start keep no persistent compilation cache (nothing written to the
# user's cache folder, every compilation counted); tests/test_compile_cache.py turns it on.
os.environ.setdefault("JAXMLP_COMPILE_CACHE", "off")


@pytest.fixture(autouse=True)
def _doctest_namespace(doctest_namespace):
    doctest_namespace.update(jax=jax, jnp=jnp, np=np, jm=jaxmlp)
    doctest_namespace.update({name: getattr(jaxmlp, name) for name in jaxmlp.__all__})
    doctest_namespace.update(sgd=jaxmlp.optim.sgd)


@pytest.fixture
def x64():
    """Run the test with 64-bit floats (create its arrays inside the test)."""
    with jax.enable_x64(True):
        yield
