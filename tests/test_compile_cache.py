"""The command line's persistent compilation cache: used by default, in the folder it says, and off
when asked (`jaxmlp.compile_cache`)."""

import os
import subprocess
import sys
from pathlib import Path

from jaxmlp import compile_cache

ROOT = Path(__file__).resolve().parents[1]


def train(tmp_path, name, env_cache, *before):
    env = {**os.environ, "PYTHONPATH": str(ROOT), compile_cache.ENV: env_cache}
    argv = [sys.executable, "-m", "jaxmlp", *before, "train", "--epochs", "3", "--no-plots"]
    argv += ["--out", str(tmp_path / name)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr


def test_the_command_line_keeps_its_programs_in_the_cache_folder_unless_told_not_to(tmp_path):
    cache = tmp_path / "cache"
    train(tmp_path, "on", str(cache))
    entries = sorted(p.name for p in cache.iterdir())
    assert any(name.startswith("jit__fit_epochs-") for name in entries), entries
    off = tmp_path / "never"
    train(tmp_path, "off", str(off), "--no-compile-cache")
    assert not off.exists()


def test_the_folder_comes_from_the_environment_or_the_user_cache(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
    assert compile_cache.default_dir() == os.path.join("/somewhere", "jaxmlp", "xla")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compile_cache.default_dir().endswith(os.path.join(".cache", "jaxmlp", "xla"))
    for word in ("off", "OFF", "0", "no", "false", ""):
        monkeypatch.setenv(compile_cache.ENV, word)
        assert compile_cache.from_environment("/default") is None
    monkeypatch.setenv(compile_cache.ENV, "/my/cache")
    assert compile_cache.from_environment("/default") == "/my/cache"
    monkeypatch.delenv(compile_cache.ENV)
    assert compile_cache.from_environment("/default") == "/default"
