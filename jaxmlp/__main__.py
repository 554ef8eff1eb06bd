"""``python -m jaxmlp …``: the ``jaxmlp`` command line."""

from jaxmlp.cli import console

raise SystemExit(console())
