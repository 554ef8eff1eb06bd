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


# The longest tests (real processes, notebooks, generated properties) start first, so that the
# two pytest-xdist workers finish together instead of one waiting on a long test at the end.
FIRST = ("test_kill_resume.py", "test_notebooks.py", "test_sharding.py", "test_properties.py",
         "test_cli_contract.py", "test_train_cli.py", "test_selection.py")  # fmt: skip


def pytest_collection_modifyitems(items):
    """Order the collected tests: the modules in `FIRST` (in its order), then the rest."""
    rank = {name: i for i, name in enumerate(FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(FIRST)))
