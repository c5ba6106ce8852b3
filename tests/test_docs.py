"""The API reference (docs/api.md) documents every public function, and nothing that does not exist."""

from __future__ import annotations

import doctest
import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest

API_MD = Path(__file__).parents[1] / "docs" / "api.md"
PUBLIC_MODULES = ["psysc.pp", "psysc.tl", "psysc.pl", "psysc.gwas", "psysc.datasets"]
#: every name these export in __all__ (functions and classes; subpackages and constants aside) is in docs/api.md
LISTED_MODULES = [*PUBLIC_MODULES, "psysc.models", "psysc.models.geneformer", "psysc.models.scgpt", "psysc.testing"]

_DIRECTIVE = re.compile(r"^\s*\.\.\s+([\w:-]+)::\s*(.*?)\s*$")


def documented_names(text: str) -> set[str]:
    """Fully qualified names listed in the ``autosummary`` blocks of a MyST/reST API page.

    Entries are resolved against the ``currentmodule`` (or ``module``) in force, as Sphinx does.
    Prose mentions do not count: a function is documented only when autosummary lists it.
    """
    names: set[str] = set()
    current = ""
    in_autosummary = False
    for line in text.splitlines():
        match = _DIRECTIVE.match(line)
        if match:
            directive, argument = match.groups()
            if directive in ("currentmodule", "module", "py:currentmodule", "py:module"):
                current = "" if argument == "None" else argument
            in_autosummary = directive == "autosummary"
            continue
        if not in_autosummary:
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith(":"):  # blank line or directive option
            continue
        if stripped.startswith("```"):  # end of the MyST fence
            in_autosummary = False
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_autosummary = False
            continue
        entry = stripped.lstrip("~").split()[0]
        names.add(entry if entry.startswith("psysc.") or not current else f"{current}.{entry}")
    return names


def public_functions(module: ModuleType) -> list[str]:
    """Fully qualified names of the functions a module exports in ``__all__``."""
    exported = getattr(module, "__all__", None)
    if exported is None:
        raise AssertionError(f"{module.__name__} has no __all__")
    return [
        f"{module.__name__}.{name}" for name in exported if inspect.isfunction(inspect.unwrap(getattr(module, name)))
    ]


def public_objects(module: ModuleType) -> list[str]:
    """Fully qualified names of the functions and classes a module exports in ``__all__``."""
    exported = getattr(module, "__all__", None)
    if exported is None:
        raise AssertionError(f"{module.__name__} has no __all__")
    return [
        f"{module.__name__}.{name}" for name in exported
        if inspect.isfunction(inspect.unwrap(getattr(module, name))) or inspect.isclass(getattr(module, name))
    ]


def undocumented(module: ModuleType, text: str) -> list[str]:
    """Public functions and classes of ``module`` that ``text`` does not list."""
    documented = documented_names(text)
    return [name for name in public_objects(module) if name not in documented]


def _resolve(dotted: str):
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


@pytest.fixture(scope="module")
def api_text() -> str:
    return API_MD.read_text(encoding="utf-8")


@pytest.mark.parametrize("module_name", LISTED_MODULES)
def test_every_public_function_is_in_api_md(module_name: str, api_text: str) -> None:
    module = importlib.import_module(module_name)
    missing = undocumented(module, api_text)
    assert not missing, f"public functions or classes missing from an autosummary block of docs/api.md: {missing}"


def test_settings_is_in_api_md(api_text: str) -> None:
    assert "psysc.settings" in documented_names(api_text)


def test_every_api_entry_exists(api_text: str) -> None:
    stale = []
    for name in sorted(documented_names(api_text)):
        try:
            _resolve(name)
        except (ImportError, AttributeError):
            stale.append(name)
    assert not stale, f"docs/api.md lists names that psysc does not have: {stale}"


def test_every_public_function_has_a_docstring_with_an_example() -> None:
    lacking = []
    for module_name in PUBLIC_MODULES:
        for name in public_functions(importlib.import_module(module_name)):
            doc = inspect.getdoc(_resolve(name)) or ""
            if "Examples" not in doc:
                lacking.append(name)
    assert not lacking, f"public functions without a numpydoc 'Examples' section: {lacking}"


def _doctests():
    finder = doctest.DocTestFinder(recurse=False)
    methods = doctest.DocTestFinder(recurse=True)  # a class's own docstring and those of its methods
    for module_name in LISTED_MODULES:
        for name in public_objects(importlib.import_module(module_name)):
            obj = _resolve(name)
            for test in (methods if inspect.isclass(obj) else finder).find(obj, name, globs={}):
                if test.examples:
                    yield pytest.param(test, id=test.name)


@pytest.mark.parametrize("test", list(_doctests()))
def test_docstring_examples_run_as_written(test, tmp_path, monkeypatch) -> None:
    """Every public function's example gives the output its docstring shows (``# doctest: +SKIP`` lines aside)."""
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out: list[str] = []
    result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)


# -- the checker itself catches what it should ---------------------------------------------------


def _fake_module() -> ModuleType:
    module = ModuleType("psysc.fake")

    def documented_one(adata):
        """Documented."""

    def forgotten(adata):
        """Not in the page."""

    class Forgotten:
        """A class not in the page."""

    module.documented_one = documented_one
    module.forgotten = forgotten
    module.Forgotten = Forgotten
    module.CONSTANT = ("a", "b")
    module.__all__ = ["documented_one", "forgotten", "Forgotten", "CONSTANT"]
    return module


def test_checker_reports_an_undocumented_function() -> None:
    page = """
```{eval-rst}
.. currentmodule:: psysc

.. autosummary::
   :toctree: generated

   fake.documented_one
```

Prose that mentions psysc.fake.forgotten does not document it.
"""
    assert undocumented(_fake_module(), page) == ["psysc.fake.forgotten", "psysc.fake.Forgotten"]


def test_checker_resolves_currentmodule_and_full_names() -> None:
    page = """
```{eval-rst}
.. currentmodule:: psysc.fake

.. autosummary::
   :toctree: generated

   documented_one
```

```{eval-rst}
.. autosummary::

   psysc.fake.forgotten
   psysc.fake.Forgotten
```
"""
    assert documented_names(page) == {"psysc.fake.documented_one", "psysc.fake.forgotten", "psysc.fake.Forgotten"}
    assert undocumented(_fake_module(), page) == []


def test_checker_ignores_constants() -> None:
    assert public_functions(_fake_module()) == ["psysc.fake.documented_one", "psysc.fake.forgotten"]
    everything = ["psysc.fake.documented_one", "psysc.fake.forgotten", "psysc.fake.Forgotten"]
    assert public_objects(_fake_module()) == everything
