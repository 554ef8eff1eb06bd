"""A griffe extension for the API reference: docstring examples shown as code.

jaxmlp's docstrings hold doctest examples (``>>>`` lines and their output) without an
"Examples:" heading, so Markdown would read their brackets as links. This extension wraps
every run of doctest lines, with the output lines that follow, in a ``pycon`` fence.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

PROMPT = re.compile(r"^(\s*)(>>>|\.\.\.)( |$)")


def fence_doctests(text: str) -> str:
    """`text` with each doctest example (prompts and output, to a blank line) fenced."""
    out, block, indent = [], [], ""
    for line in [*text.splitlines(), ""]:
        m = PROMPT.match(line)
        if m and not block:
            indent = m.group(1)
        if m or (block and line.strip()):
            block.append(line[len(indent) :] if line.startswith(indent) else line.strip())
            continue
        if block:
            out += [f"{indent}```pycon", *(indent + b for b in block), f"{indent}```"]
            block = []
        out.append(line)
    return "\n".join(out[:-1])


class DoctestFences(griffe.Extension):
    """Fence the doctest examples of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        """Rewrite `obj`'s docstring before it is parsed."""
        if obj.docstring is not None:
            obj.docstring.value = fence_doctests(obj.docstring.value)
