"""Every public function and class of refprune.core and refprune.density has a runnable example.

pytest runs the examples themselves (``--doctest-modules``, pyproject.toml); this test checks that
none is missing and that each runs with only the imports it writes, as a reader pasting it would
(pytest's doctest runs them inside the module's namespace, which would hide a missing import).
"""

import doctest
import importlib
import inspect
import pkgutil

import pytest

import refprune.core
import refprune.density

MODULES = sorted(f"{pkg.__name__}.{info.name}" for pkg in (refprune.core, refprune.density)
                 for info in pkgutil.iter_modules(pkg.__path__))
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


def public_objects(module):
    """(qualified name, object) of each public function, class, method and property the module defines."""
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            yield name, obj
            for attr, member in vars(obj).items():
                if attr.startswith("_"):
                    continue
                member = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if inspect.isfunction(member):
                    yield f"{name}.{attr}", member


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_object_has_an_example(module_name):
    module = importlib.import_module(module_name)
    missing = [name for name, obj in public_objects(module)
               if ">>>" not in (obj.__doc__ or "") or "Examples" not in (obj.__doc__ or "")]
    assert not missing, f"{module_name}: no Examples section with >>> lines in {missing}"


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run_with_their_own_imports(module_name):
    module = importlib.import_module(module_name)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    finder = doctest.DocTestFinder(recurse=False)
    tests = [test for name, obj in public_objects(module)
             for test in finder.find(obj, f"{module_name}.{name}", globs={})]
    failed = [test.name for test in tests if runner.run(test, out=lambda text: None).failed]
    assert tests and not failed, f"examples failing outside the module's namespace (missing import?): {failed}"
