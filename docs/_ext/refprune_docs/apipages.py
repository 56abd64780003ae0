"""The API reference: one page per package, from the packages' ``__all__``; every public name documented.

A package's ``__all__`` lists its public modules; a listed subpackage that has an ``__all__`` of
its own is expanded the same way. Each module gets a section with its docstring and its public
functions and classes (autodoc with numpydoc). :func:`check_docstrings` warns (an error under
``-W``) for a public function, class or method of those modules without a docstring, which
autodoc would otherwise leave out silently.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect

from sphinx.util import logging

logger = logging.getLogger(__name__)

# The packages of refprune, in the order of the README's table (the API index lists them so).
PACKAGES = ("core", "density", "lrp", "oracle", "vectors", "train", "experiments", "data", "util", "cli")


def public_modules(name: str) -> list[str]:
    """The package ``name`` and the modules its ``__all__`` lists (subpackages with an ``__all__``: recursively)."""
    package = importlib.import_module(name)
    out = [name]
    for sub in getattr(package, "__all__", ()):
        full = f"{name}.{sub}"
        module = importlib.import_module(full)
        if hasattr(module, "__path__") and hasattr(module, "__all__"):
            out += public_modules(full)
        else:
            out.append(full)
    return out


def heading(text: str, char: str) -> list[str]:
    return [text, char * len(text), ""]


def page(package: str) -> str:
    """The reStructuredText of one package's page."""
    name = f"refprune.{package}"
    modules = public_modules(name)
    lines = [f".. _api-{package}:", "", *heading(name, "="),
             f".. automodule:: {name}", "   :no-members:", "",
             f".. refprune-derived:: {name}", "", ".. rubric:: Modules", "",
             ".. autosummary::", ""]
    lines += [f"   {module[len(name) + 1:]}" for module in modules[1:]] + [""]
    if package == "cli":
        lines += [*heading("Commands and options", "-"),
                  "Every command of ``refprune``, with every option, read from the parser "
                  "(:func:`refprune.cli.main.build_parser`) when this page was built.", "",
                  ".. refprune-cli::", ""]
    for module in modules[1:]:
        lines += [*heading(module, "-"), f".. automodule:: {module}", "",
                  f".. refprune-derived:: {module}", ""]
    return "\n".join(lines)


def pages() -> dict:
    """{page name: reStructuredText} of every package page."""
    return {f"refprune.{package}": page(package) for package in PACKAGES}


def public_objects(module):
    """(qualified name, object) of the public functions, classes and methods defined in ``module``."""
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(obj):
            yield f"{module.__name__}.{name}", obj
        elif inspect.isclass(obj):
            yield f"{module.__name__}.{name}", obj
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and inspect.isfunction(member):
                    yield f"{module.__name__}.{name}.{attr}", member


def has_docstring(obj) -> bool:
    """A docstring written for ``obj`` (not the signature a dataclass makes up when there is none)."""
    doc = (obj.__doc__ or "").strip()
    made_up = inspect.isclass(obj) and dataclasses.is_dataclass(obj) and doc.startswith(f"{obj.__name__}(")
    return bool(doc) and not made_up


def check_docstrings() -> None:
    """Warn for each public function, class or method of a public module without a docstring."""
    for package in PACKAGES:
        for name in public_modules(f"refprune.{package}"):
            module = importlib.import_module(name)
            if not (module.__doc__ or "").strip():
                logger.warning("public module %s has no docstring", name)
            for qualified, obj in public_objects(module):
                if not has_docstring(obj):
                    logger.warning("public name %s has no docstring", qualified)


def setup(app) -> None:
    pass
