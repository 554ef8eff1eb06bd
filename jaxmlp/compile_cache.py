"""JAX's persistent compilation cache: on by default for the command line, opt-in for the library.

Compiling the training program is most of the wall time of a short ``jaxmlp train`` run. With the
cache, a second run with the same shapes and settings loads the compiled program from disk.

- The command line enables it in `default_dir` unless ``JAXMLP_COMPILE_CACHE=off`` (or ``0``,
  ``no``, ``false``) or ``jaxmlp --no-compile-cache COMMAND …``; ``JAXMLP_COMPILE_CACHE=DIR``
  puts it in ``DIR``.
- A notebook or script opts in with ``jaxmlp.compile_cache.enable()`` (or ``enable(DIR)``)
  before its first `jaxmlp.fit`; the library never turns it on by itself.

Entries are keyed by JAX on the program, the JAX version and the device, so a stale entry is
never used; deleting the folder is always safe.
"""

from __future__ import annotations

import os

import jax

ENV = "JAXMLP_COMPILE_CACHE"
OFF = ("off", "0", "no", "false", "")


def default_dir() -> str:
    """``$XDG_CACHE_HOME/jaxmlp/xla``, or ``~/.cache/jaxmlp/xla`` without XDG_CACHE_HOME."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jaxmlp", "xla")


def from_environment(default: str | None = None) -> str | None:
    """The folder ``JAXMLP_COMPILE_CACHE`` names, None when it says off, else `default`."""
    value = os.environ.get(ENV)
    if value is None:
        return default
    return None if value.strip().lower() in OFF else value


def enable(path: str | os.PathLike | None = None) -> str:
    """Turn on JAX's persistent compilation cache in `path` (default `default_dir`).

    Every compiled program is written there, however quick its compilation, and read back by
    later processes that compile the same program. Returns the folder.
    """
    folder = os.fspath(default_dir() if path is None else path)
    os.makedirs(folder, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder
