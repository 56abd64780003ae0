"""Links from the Markdown pages to the repository's files, and from the API back to the derivations.

On a code host ``[refprune/core/masks.py: soft_mask](../refprune/core/masks.py)`` opens the file.
On the site such a link (MyST makes it a download reference, since the file is no page) becomes:

- for a name of refprune that the API reference documents: a link to its entry there;
- otherwise (a test, a private helper, a constant, a script): a link to a highlighted source
  page of the file (``_source/<path>.html``) with an anchor per definition;
- ``figures/README.md``: the thesis figures page; a package folder ``refprune/x``: its API page.

A label ``path: symbol`` whose symbol the file does not define, or whose path is not the
target's, is a warning (an error under ``-W``), as tests/test_docs_links.py checks for
docs/derivations.md.

Every link of docs/derivations.md into refprune is also recorded with the section it sits in
(and the results row, R1–R13, for the results table), so that each API entry can say where
it is derived (the ``refprune-derived`` directive, filled in once every page has been read).
"""

from __future__ import annotations

import ast
import html
import re
from functools import lru_cache
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

from refprune_docs.paths import DOCS, ROOT

logger = logging.getLogger(__name__)

CODE_LABEL = re.compile(r"^([\w./-]+\.\w+): ([A-Za-z_][\w.]*)$")
SOURCE_PAGES = "_source"  # where the highlighted source pages go in the built site
DERIVED_FROM = ("derivations",)  # the pages whose links say where an API entry is derived
RESULT_ROW = re.compile(r"^R\d+$")
# Files of the repository that have a page of their own on the site.
PAGES_FOR_FILES = {"figures/README.md": "generated/figures"}


class repo_link(nodes.Inline, nodes.Element):
    """A link to a file (and maybe a name in it) of the repository, resolved once all pages are read."""


class derived_placeholder(nodes.Element):
    """Where the sections deriving an API object (or module) go, filled in after reading."""


@lru_cache(maxsize=None)
def defined_names(path: Path) -> frozenset:
    """Names a Python file defines (defs and classes at any depth, ``Class.method``, module constants)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return frozenset(definitions(tree))


def definitions(tree) -> dict:
    """{name: first line} of the defs and classes at any depth (methods also as ``Class.method``) and
    of the module-level assignment targets of a parsed Python file."""
    found = {}

    def visit(node, prefix=""):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                line = min([d.lineno for d in child.decorator_list] + [child.lineno])
                found.setdefault(child.name, line)
                found.setdefault(prefix + child.name, line)
                visit(child, prefix + child.name + "." if isinstance(child, ast.ClassDef) else prefix)
            else:
                visit(child, prefix)

    visit(tree)
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        for target in targets:
            for leaf in ast.walk(target):
                if isinstance(leaf, ast.Name):
                    found.setdefault(leaf.id, node.lineno)
    return found


def dotted(path: str) -> str:
    """``refprune/core/masks.py`` → ``refprune.core.masks``; a package folder → the package."""
    parts = list(Path(path).with_suffix("").parts) if path.endswith(".py") else list(Path(path).parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


class RepoLinks(SphinxTransform):
    """Turn MyST's download references to repository files outside docs/ into :class:`repo_link` nodes."""

    default_priority = 900

    def apply(self, **kwargs) -> None:
        env = self.env
        for node in list(self.document.findall(addnodes.download_reference)) + self.outside_pages():
            if isinstance(node, addnodes.download_reference):
                _, absolute = env.relfn2path(node.get("reftarget", ""), env.docname)
            else:
                absolute = node["reftarget"] + ".md"
            path = Path(absolute).resolve()
            if not path.is_relative_to(ROOT) or path.is_relative_to(DOCS) or not path.exists():
                continue
            rel = path.relative_to(ROOT).as_posix()
            label = node.astext().strip().strip("`")
            match = CODE_LABEL.match(label)
            symbol = ""
            if match:
                if match.group(1) != rel:
                    logger.warning("link labelled %r points to %s", label, rel, location=node)
                symbol = match.group(2)
            link = repo_link(path=rel, symbol=symbol, folder=path.is_dir())
            link.extend(child.deepcopy() for child in node.children)
            node.replace_self(link)
            if path.is_file():
                env.refprune_files.setdefault(env.docname, set()).add(rel)
            if env.docname in DERIVED_FROM and rel.startswith("refprune/"):
                name = dotted(rel) + (f".{symbol}" if symbol else "")
                section, row = where(link)
                if section is not None:
                    place = (env.docname, section["ids"][0], section[0].astext(), row)
                    env.refprune_derived.setdefault(env.docname, {}).setdefault(name, [])
                    if place not in env.refprune_derived[env.docname][name]:
                        env.refprune_derived[env.docname][name].append(place)


    def outside_pages(self) -> list:
        """MyST's links to Markdown files outside docs/ (it takes them for pages it cannot find)."""
        return [node for node in self.document.findall(addnodes.pending_xref)
                if node.get("reftype") == "myst" and node.get("refdomain") == "doc"
                and Path(node["reftarget"]).is_absolute() and Path(node["reftarget"] + ".md").is_file()]


def where(node):
    """(the section a node sits in, the results row label R1–R13 if it is in that table, else '')."""
    row, parent = "", node.parent
    while parent is not None and not isinstance(parent, nodes.section):
        if isinstance(parent, nodes.row) and not row:
            first = parent[0].astext().strip()
            row = first if RESULT_ROW.match(first) else ""
        parent = parent.parent
    return parent, row


class ResolveRepoLinks(SphinxPostTransform):
    """Resolve :class:`repo_link` nodes (all pages read, so the API's objects are known)."""

    default_priority = 5

    def run(self, **kwargs) -> None:
        for node in list(self.document.findall(repo_link)):
            uri = self.uri_of(node)
            if uri is None:
                new = nodes.inline("", "", *node.children)
            else:
                new = nodes.reference("", "", *node.children, internal=True, refuri=uri)
            node.replace_self(new)

    def relative(self, page: str, anchor: str = "") -> str:
        return self.app.builder.get_relative_uri(self.env.docname, page) + (f"#{anchor}" if anchor else "")

    def uri_of(self, node) -> str | None:
        path, symbol = node["path"], node["symbol"]
        if path in PAGES_FOR_FILES:
            return self.relative(PAGES_FOR_FILES[path])
        python = self.env.get_domain("py")
        if path.startswith("refprune/") and (node["folder"] or path.endswith(".py")):
            module = dotted(path)
            name = f"{module}.{symbol}" if symbol else module
            if symbol and name in python.objects:
                entry = python.objects[name]
                return self.relative(entry.docname, entry.node_id)
            if not symbol and module in python.modules:
                entry = python.modules[module]
                return self.relative(entry.docname, entry.node_id)
        if node["folder"]:
            logger.warning("no page for the folder %s", path, location=node)
            return None
        if symbol and path.endswith(".py") and symbol not in defined_names(ROOT / path):
            logger.warning("%s does not define %s", path, symbol, location=node)
            return None
        return self.relative(f"{SOURCE_PAGES}/{path}", symbol)


class DerivedDirective(Directive):
    """``.. refprune-derived:: refprune.core.masks.soft_mask``: where the object (or module) is derived."""

    required_arguments = 1

    def run(self):
        return [derived_placeholder(name=self.arguments[0])]


class FillDerived(SphinxPostTransform):
    """Replace each :class:`derived_placeholder` with links to the sections that derive its object."""

    default_priority = 4

    def run(self, **kwargs) -> None:
        derived = {}
        for per_doc in self.env.refprune_derived.values():
            for name, places in per_doc.items():
                derived.setdefault(name, []).extend(places)
        for node in list(self.document.findall(derived_placeholder)):
            name = node["name"]
            # a module lists what links to it or to anything in it; an object, what links to it
            is_module = name in self.env.get_domain("py").modules
            places = []
            for key in sorted(derived):
                if key == name or (is_module and key.startswith(name + ".")):
                    places += [p for p in derived[key] if p not in places]
            if not places:
                node.replace_self([])
                continue
            para = nodes.paragraph(classes=["refprune-derived"])
            para += nodes.strong("", "Derived in: " if not is_module else "Derivations: ")
            for i, (docname, anchor, title, row) in enumerate(sorted(set(places), key=order)):
                if i:
                    para += nodes.Text("; ")
                text = row or title
                uri = self.app.builder.get_relative_uri(self.env.docname, docname) + f"#{anchor}"
                para += nodes.reference("", text, internal=True, refuri=uri)
            node.replace_self(para)


def order(place):
    """Results rows first (R1, R2, …), then the sections in the order of their numbers."""
    docname, _, title, row = place
    if row:
        return (0, int(row[1:]), "")
    number = re.match(r"^([A-Z]?)(\d+)(?:\.(\d+))?", title)
    if number:
        letter, major, minor = number.groups()
        return (1 if not letter else 2, int(major), f"{letter}{int(minor or 0):03d}")
    return (3, 0, title)


def source_page(app, path: str) -> tuple:
    """(page name, context, template) of the highlighted source of one repository file."""
    text = (ROOT / path).read_text(encoding="utf-8")
    try:
        lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        lexer = TextLexer(stripnl=False, ensurenl=False)
    lines = highlight(text, lexer, HtmlFormatter(nowrap=True)).split("\n")
    anchors = {}
    if path.endswith(".py"):
        for name, line in definitions(ast.parse(text)).items():
            anchors.setdefault(line, []).append(name)
    width = len(str(len(lines)))
    body = []
    for number, line in enumerate(lines, 1):
        ids = "".join(f'<span id="{html.escape(name)}"></span>' for name in anchors.get(number, []))
        body.append(f'{ids}<span class="linenos">{number:>{width}}</span> {line}')
    page = (f"<h1>{html.escape(path)}</h1>\n"
            f'<div class="highlight-default notranslate"><div class="highlight"><pre>'
            + "\n".join(body) + "</pre></div></div>\n")
    return f"{SOURCE_PAGES}/{path}", {"title": path, "body": page}, "page.html"


# Files of refprune that a docstring's reference outside the API reference names (filled while writing).
REFERENCED_FILES = set()


def module_file(name: str):
    """(the file of the longest module prefix of a dotted name, the rest) or (None, None)."""
    parts = name.split(".")
    for i in range(len(parts), 1, -1):
        for candidate in (Path(*parts[:i]).with_suffix(".py"), Path(*parts[:i], "__init__.py")):
            if (ROOT / candidate).is_file():
                return candidate.as_posix(), ".".join(parts[i:])
    return None, None


def internal_reference(app, env, node, contnode):
    """missing-reference: a reference to a name of refprune the API reference does not document (a
    module outside the packages' ``__all__``, a private helper, a constant) links to its source page.
    A name no file defines stays unresolved, and is reported (``nitpicky``)."""
    if node.get("refdomain") != "py":
        return None
    target, module = node["reftarget"], node.get("py:module") or ""
    if target.startswith("."):
        parts = module.split(".")
        candidates = [".".join(parts[:i]) + target for i in range(len(parts), 0, -1)]
    else:
        candidates = [target] + ([f"{module}.{target}"] if module else [])
    for name in candidates:
        if not name.startswith("refprune."):
            continue
        path, symbol = module_file(name)
        if path is None:
            continue
        names = defined_names(ROOT / path)
        if symbol and symbol not in names:
            parent = symbol.rpartition(".")[0]
            if node.get("reftype") not in ("attr", "meth", "obj") or parent not in names:
                continue
            symbol = parent  # an attribute set in __init__: the class
        REFERENCED_FILES.add(path)
        uri = app.builder.get_relative_uri(node["refdoc"], f"{SOURCE_PAGES}/{path}")
        return nodes.reference("", "", contnode, internal=True, refuri=uri + (f"#{symbol}" if symbol else ""))
    return None


def collect_source_pages(app):
    """html-collect-pages: one page per repository file a page links to."""
    paths = set().union(REFERENCED_FILES, *app.env.refprune_files.values())
    for path in sorted(paths):
        if path not in PAGES_FOR_FILES:
            yield source_page(app, path)


def init_env(app, env, docnames) -> None:
    for attr in ("refprune_files", "refprune_derived"):
        if not hasattr(env, attr):
            setattr(env, attr, {})


def purge(app, env, docname) -> None:
    for attr in ("refprune_files", "refprune_derived"):
        getattr(env, attr, {}).pop(docname, None)


def merge(app, env, docnames, other) -> None:
    for attr in ("refprune_files", "refprune_derived"):
        mine = getattr(env, attr)
        for docname in docnames:
            if docname in getattr(other, attr, {}):
                mine[docname] = getattr(other, attr)[docname]


def setup(app) -> None:
    app.add_node(repo_link)
    app.add_node(derived_placeholder)
    app.add_transform(RepoLinks)
    app.add_post_transform(FillDerived)
    app.add_post_transform(ResolveRepoLinks)
    app.add_directive("refprune-derived", DerivedDirective)
    app.connect("env-before-read-docs", init_env)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("html-collect-pages", collect_source_pages)
    app.connect("missing-reference", internal_reference)
    app.connect("autodoc-process-docstring", derived_line, priority=900)


def derived_line(app, what, name, obj, options, lines) -> None:
    """autodoc-process-docstring (after numpydoc): end each function's, class's and method's entry
    with where it is derived."""
    if what in ("function", "class", "method"):
        lines += ["", f".. refprune-derived:: {name}", ""]
