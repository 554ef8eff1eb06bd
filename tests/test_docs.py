"""The documentation site's sources: every public name is in the API reference.

`mkdocs build --strict` (run by `.ci/run`) checks that the pages build, the links resolve and the
docstrings parse; this test checks, without mkdocs, that nothing public is left out of them.
"""

import pathlib
import re
import types

import pytest

import jaxmlp
import jaxmlp.optim
import jaxmlp.schedules
import jaxmlp.stats

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def documented() -> set[str]:
    """The identifiers the API pages render (``::: jaxmlp.fit``)."""
    text = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.md"))
    return set(re.findall(r"^::: ([\w.]+)$", text, re.M))


def public(module: types.ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:  # a module without __all__: what it defines without a leading _
        names = [n for n, v in vars(module).items() if not n.startswith("_")
                 and getattr(v, "__module__", None) == module.__name__]  # fmt: skip
    return sorted(names)


@pytest.mark.parametrize("module", [jaxmlp, jaxmlp.optim, jaxmlp.schedules, jaxmlp.stats],
                         ids=lambda m: m.__name__)  # fmt: skip
def test_every_public_name_is_in_the_api_reference(module):
    shown = documented()
    missing = []
    for name in public(module):
        obj = getattr(module, name)
        if isinstance(obj, types.ModuleType):
            home = obj.__name__
        else:  # a function or class; a constant (a tuple of types) belongs to its module
            home = getattr(obj, "__module__", None) or module.__name__
        # Rendered as itself, as a member of its module or package's page, or by its own name.
        candidates = {f"{module.__name__}.{name}", home, home.rsplit(".", 1)[0], module.__name__}
        if not candidates & shown:
            missing.append(f"{module.__name__}.{name} (defined in {home})")
    assert not missing, "not in docs/api/*.md: " + ", ".join(missing)


def test_the_pages_include_readme_sections_that_exist():
    readme = (DOCS.parent / "README.md").read_text()
    for page in DOCS.rglob("*.md"):
        for section in re.findall(r'--8<-- "README.md:(\w+)"', page.read_text()):
            assert f"[start:{section}]" in readme and f"[end:{section}]" in readme, (page, section)


@pytest.mark.parametrize("module", [jaxmlp, jaxmlp.optim, jaxmlp.schedules, jaxmlp.stats],
                         ids=lambda m: m.__name__)  # fmt: skip
def test_every_public_function_and_class_has_a_docstring(module):
    """The API reference renders docstrings: a public name without one would be an empty entry."""
    objects = {name: getattr(module, name) for name in public(module)}
    bare = [name for name, obj in objects.items()
            if callable(obj) and not (obj.__doc__ or "").strip()]  # fmt: skip
    assert not bare, f"{module.__name__}: no docstring: {', '.join(bare)}"
