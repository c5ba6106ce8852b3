"""The API reference (docs/api.md) documents every public function, and nothing that does not exist.

The documentation builds with Sphinx without a broken reference to psysc's own objects, and every public
docstring's ``Returns`` section is in the numpydoc form Sphinx renders (a type, then an indented description).
"""

from __future__ import annotations

import ast
import builtins
import doctest
import importlib
import inspect
import re
import shutil
import subprocess
import sys
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


#: a Returns entry: a type (``pandas.DataFrame or None``, ``dict[str, pandas.Series]``), or ``name : type``
_RETURN_TYPE = re.compile(r"^(\w+\s*:\s*)?[\w.\[\], |`~()]+$")


def _section(doc: str, title: str) -> list[str]:
    """The lines of a numpydoc section (``title`` underlined by dashes) up to the next section, or ``[]``."""
    lines = doc.splitlines()
    for i in range(len(lines) - 1):
        if lines[i].strip() == title and lines[i + 1].strip() and set(lines[i + 1].strip()) == {"-"}:
            body = []
            for j in range(i + 2, len(lines)):
                nxt = lines[j + 1].strip() if j + 1 < len(lines) else ""
                if lines[j].strip() and not lines[j].startswith(" ") and nxt and set(nxt) == {"-"}:
                    break
                body.append(lines[j])
            return body
    return []


def badly_formed_returns(doc: str) -> list[str]:
    """Entries of a ``Returns`` section that Sphinx's numpydoc reader would take apart.

    numpydoc reads every unindented line of the section as an entry's type (``name : type`` or ``type``), and the
    indented lines below it as its description: prose without indentation becomes a list of types.
    """
    body = _section(doc, "Returns")
    bad = []
    for k, line in enumerate(body):
        if not line.strip() or line.startswith(" "):
            continue
        described = k + 1 < len(body) and body[k + 1].startswith(" ") and body[k + 1].strip()
        if not described or not _RETURN_TYPE.match(line.strip()):
            bad.append(line.strip())
    return bad


def _documented_callables():
    """``(name, object)`` of every public function, and of the public methods and properties of public classes."""
    for module_name in LISTED_MODULES:
        for name in public_objects(importlib.import_module(module_name)):
            obj = _resolve(name)
            yield name, obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_"):
                        continue
                    member = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                    if inspect.isfunction(member):
                        yield f"{name}.{attr}", member


def test_returns_sections_give_a_type_then_a_description() -> None:
    bad = {name: badly_formed_returns(inspect.getdoc(obj) or "") for name, obj in _documented_callables()}
    bad = {name: lines for name, lines in bad.items() if lines}
    assert not bad, f"Returns sections not as 'type' + indented description: {bad}"


def test_returns_checker_tells_prose_from_a_type() -> None:
    good = "Summary.\n\nReturns\n-------\npandas.DataFrame or None\n    The table.\n\nExamples\n--------\n>>> 1\n"
    named = "Summary.\n\nReturns\n-------\nnorm : numpy.ndarray\n    Scores.\nctrl\n    Control scores.\n"
    prose = "Summary.\n\nReturns\n-------\nThe table, with one row per group.\n\nExamples\n--------\n>>> 1\n"
    unindented = "Summary.\n\nReturns\n-------\nDataFrame\nwith one row per group.\n"
    assert badly_formed_returns(good) == [] and badly_formed_returns(named) == []
    assert badly_formed_returns(prose) == ["The table, with one row per group."]
    assert badly_formed_returns(unindented) == ["DataFrame", "with one row per group."]


_NOT_FOUND = re.compile(r"reference target not found: (\S+)")


def own_reference_problems(log: str, external: set[str]) -> list[str]:
    """The warnings and errors of a Sphinx log, less the unresolved references to other projects' objects.

    Offline, intersphinx cannot fetch the inventories of ``external`` projects (the keys of
    ``intersphinx_mapping``, and Python's standard library and built-ins): their references stay unresolved and are
    left out.
    Everything else counts, an unresolved psysc object or an unqualified name above all.
    """
    problems = []
    for line in log.splitlines():
        if "WARNING" not in line and "ERROR" not in line and "CRITICAL" not in line:
            continue
        if "inventor" in line:  # intersphinx: "failed to reach any of the inventories"
            continue
        match = _NOT_FOUND.search(line)
        if match:
            target = match.group(1)
            root = target.split(".")[0]
            if root in external or root in sys.stdlib_module_names or root in dir(builtins):
                continue
        problems.append(line.strip())
    return problems


def test_reference_filter_keeps_psysc_problems_only() -> None:
    log = "\n".join([
        "x.py:docstring of f:1: WARNING: py:class reference target not found: numpy.ndarray [ref.class]",
        "x.py:docstring of f:1: WARNING: py:class reference target not found: os.PathLike [ref.class]",
        "WARNING: failed to reach any of the inventories with the following issues:",
        "x.py:docstring of f:3: WARNING: py:func reference target not found: psysc.tl._x.helper [ref.func]",
        "docs/api.md:63: WARNING: py:func reference target not found: celltype_specificity [ref.func]",
        "docs/api.md:9: ERROR: Unknown directive type: autosumary",
        "reading sources... [ 50%] api",
    ])
    problems = own_reference_problems(log, {"numpy"})
    assert [p.split("WARNING: ")[-1].split("ERROR: ")[-1] for p in problems] == [
        "py:func reference target not found: psysc.tl._x.helper [ref.func]",
        "py:func reference target not found: celltype_specificity [ref.func]",
        "Unknown directive type: autosumary",
    ]


def test_docs_build_without_broken_references(tmp_path) -> None:
    """``sphinx-build -n`` (nitpicky) on a copy of docs/ and tutorials/: no problem with psysc's own objects."""
    import sphinx  # noqa: F401  (the doc extras are test dependencies: a missing one fails here, clearly)

    root = API_MD.parents[1]
    shutil.copytree(root / "docs", tmp_path / "docs", ignore=shutil.ignore_patterns("_build", "generated"))
    shutil.copytree(root / "tutorials", tmp_path / "tutorials")
    conf = ast.parse((root / "docs" / "conf.py").read_text())
    (mapping,) = [ast.literal_eval(node.value) for node in conf.body if isinstance(node, ast.Assign)
                  and any(getattr(target, "id", "") == "intersphinx_mapping" for target in node.targets)]
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-n", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
         str(tmp_path / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    problems = own_reference_problems(proc.stdout + proc.stderr, set(mapping))
    assert not problems, "\n".join(problems)
    assert (tmp_path / "html" / "generated" / "psysc.tl.score_disorders.html").exists()
    import psysc

    settings_page = (tmp_path / "html" / "generated" / "psysc.settings.html").read_text(encoding="utf-8")
    assert "settings.verbosity" in settings_page
    assert str(psysc.settings.cachedir) not in settings_page  # the building machine's paths stay out of the docs


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
