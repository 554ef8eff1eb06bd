"""The ``jaxmlp`` command line (also ``python -m jaxmlp``).

Subcommands, one module each:

- ``jaxmlp train`` (`jaxmlp.cli.train`): train a net and write metrics, a checkpoint and plots;
  with no options, the book's chapter-14 spiral experiment.
- ``jaxmlp gradcheck`` (`jaxmlp.cli.gradcheck`): a random net and random data; the hand-written
  backward pass checked against autodiff and finite differences, the report and its findings
  printed; ``--data`` and ``--params`` check on your own data and weights.
- ``jaxmlp optimcheck`` (`jaxmlp.cli.optimcheck`): your optimizer against one of jaxmlp's on one
  gradient stream, step by step; a departure named by the known variant it matches.

Every option is declared once, as a field of the subcommand's config dataclass
(`jaxmlp.cli.config`); the parser is derived from it. Exit status: 0 on success, 1 when a
check fails or training diverges, 2 on bad options (a one-line message on stderr), 3 when your
own code (``--backward``, ``--optimizer``) raised (its traceback on stderr).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

import jaxmlp
from jaxmlp import compile_cache
from jaxmlp.cli import gradcheck, optimcheck, train
from jaxmlp.cli.config import GROUP_NOTES, add_options, from_namespace

COMMANDS = {"train": train, "gradcheck": gradcheck, "optimcheck": optimcheck}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def parser() -> argparse.ArgumentParser:
    """The ``jaxmlp`` parser: one subparser per command, its options from its config."""
    top = _Parser(prog="jaxmlp", epilog="Run 'jaxmlp COMMAND --help' for a command's options.",
                  description="jaxmlp: a functional multilayer perceptron in JAX, with its "
                  "backpropagation written out.")  # fmt: skip
    top.add_argument("--version", action="version", version=f"jaxmlp {jaxmlp.__version__}")
    top.add_argument("--no-compile-cache", action="store_true",
                     help="do not keep compiled programs in the persistent cache (default: "
                     f"{compile_cache.default_dir()}, or ${compile_cache.ENV}; "
                     f"{compile_cache.ENV}=off also turns it off)")  # fmt: skip
    sub = top.add_subparsers(dest="command", metavar="COMMAND")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.HELP, description=command.DESCRIPTION,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        add_options(p, command.Config, GROUP_NOTES, **command.FILL)
        p.set_defaults(command_parser=p)
    return top


def main(argv: list[str] | None = None) -> int:
    """Run the ``jaxmlp`` command line with `argv` (default: ``sys.argv[1:]``).

    Returns:
      The exit status: 0 on success, 1 when a check fails, 2 on bad options, 3 when your own
      code raised.
    """
    top = parser()
    try:
        args, extra = top.parse_known_args(argv)
        if args.command is None:
            top.error("choose a command: " + ", ".join(COMMANDS))
        if extra:  # reported by the subcommand, whose options they were meant for
            args.command_parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else 2
    command = COMMANDS[args.command]
    return command.run(from_namespace(command.Config, args))


def console(argv: list[str] | None = None) -> int:
    """The ``jaxmlp`` program: `main` with JAX's persistent compilation cache turned on.

    The cache (`jaxmlp.compile_cache`) lives in ``$JAXMLP_COMPILE_CACHE`` or the user cache folder;
    ``--no-compile-cache`` before the command, or ``JAXMLP_COMPILE_CACHE=off``, leaves it off.
    `main` itself never turns it on, so calling it in-process changes no global setting.
    """
    argv = sys.argv[1:] if argv is None else argv
    folder = compile_cache.from_environment(compile_cache.default_dir())
    if folder is not None and "--no-compile-cache" not in argv[:1]:
        try:
            compile_cache.enable(folder)
        except OSError as e:  # an unwritable folder costs speed, not the run
            print(f"jaxmlp: compile cache off: {e}", file=sys.stderr)
    return main(argv)
