"""``python -m jaxmlp …``: the ``jaxmlp`` command line."""

from jaxmlp.cli import main

raise SystemExit(main())
