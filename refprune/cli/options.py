"""Command-line options built from the configuration dataclasses, and the CLI's error kinds.

:func:`add_options` adds one ``--option`` per field of a dataclass declared
with :func:`refprune.util.options.option` (help text, choices, parser, when it
applies); ``--help`` shows each default from the dataclass itself, so nothing
is written twice. A field added to a dataclass appears on the command line
without touching this module. Options are parsed with default
``argparse.SUPPRESS``: :func:`given` returns only what the user typed, so an
option that does not apply to the chosen method or variant is caught
(:func:`check_applicable`).
"""

from __future__ import annotations

import argparse
import dataclasses
from contextlib import contextmanager

from refprune.util.io import UnreadableFile
from refprune.util.options import Range, applies


class BadInput(Exception):
    """A bad argument, file or data set: one line on stderr and exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and exit status 2."""

    def error(self, message):
        """Print ``prog: error: message`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def flag(name: str) -> str:
    """``lr_tau`` → ``--lr-tau``."""
    return "--" + name.replace("_", "-")


# Names that library messages use for what the command line calls otherwise.
ALIASES = {"layer_sizes": "layers"}


def name_options(message: str, names) -> str:
    """Say ``--lr-tau must be > 0`` where the library says ``lr_tau must be > 0``."""
    for name in sorted(set(names) | set(ALIASES), key=len, reverse=True):
        for sep in (" ", ":", "["):
            if message.startswith(name + sep):
                return flag(ALIASES.get(name, name)) + message[len(name):]
    return message


@contextmanager
def user_input(names=()):
    """Inside: every ValueError or OSError is the user's input → :class:`BadInput` naming its option."""
    try:
        yield
    except BadInput:
        raise
    except UnreadableFile as exc:  # names its file, not an option
        raise BadInput(str(exc)) from None
    except (ValueError, OSError) as exc:
        raise BadInput(name_options(str(exc), names)) from None


def typed(kind, name: str):
    """A str → value parser for argparse whose errors name the option; empty text is an error."""
    words = {int: "an integer", float: "a number", str: "text"}

    def parse(text: str):
        if not text.strip():
            raise argparse.ArgumentTypeError("must not be empty")
        try:
            return kind(text)
        except (ValueError, TypeError) as exc:
            if kind in words:
                raise argparse.ArgumentTypeError(f"must be {words[kind]}, got {text!r}") from None
            raise argparse.ArgumentTypeError(name_options(str(exc), [name])) from None
    parse.__name__ = name
    return parse


def ranged(kind, bounds: Range, name: str):
    """A str → value parser for an option that is not a configuration field, checked against ``bounds``."""
    parse = typed(kind, name)

    def parse_in_range(text: str):
        value = parse(text)
        if bounds.problem(value):
            raise argparse.ArgumentTypeError(f"must be {bounds.text()}, got {text!r}")
        return value
    parse_in_range.__name__ = name
    return parse_in_range


def nonempty(text: str) -> str:
    """argparse type of a path or name option: any text but the empty one."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def int_tuple(text: str) -> tuple:
    """``"6,5,4"`` → ``(6, 5, 4)``."""
    return tuple(int(part) for part in text.split(","))


def parser_for(default):
    """The str → value parser a field's default implies (None: not expressible on the command line)."""
    if isinstance(default, bool):
        return None
    if isinstance(default, (int, float, str)):
        return type(default)
    if isinstance(default, tuple) and all(isinstance(v, int) for v in default):
        return int_tuple
    if isinstance(default, tuple) and all(isinstance(v, str) for v in default):
        return lambda text: tuple(p.strip() for p in text.split(",") if p.strip())
    return None


def show(default) -> str | None:
    """How ``--help`` prints a default."""
    if default is None:
        return None
    if isinstance(default, tuple):
        return ",".join(map(str, default)) or "none"
    return f"{default:g}" if isinstance(default, float) else str(default)


def field_default(f):
    """A dataclass field's default (its factory called), or None when it has none."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def add_options(parser, cls, fallback=None, skip=()) -> list[str]:
    """Add an option per field of dataclass ``cls``; returns the field names added.

    ``fallback`` (field → metadata dict) supplies help, choices or a parser for
    fields whose own metadata lacks them (the field's metadata wins).
    """
    added = []
    for f in dataclasses.fields(cls):
        md = {**(fallback or {}).get(f.name, {}), **{k: v for k, v in f.metadata.items() if v is not None}}
        if not md.get("cli", True) or f.name in skip:
            continue
        default = field_default(f)
        kind = md.get("parse") or parser_for(default)
        if kind is None:
            continue
        shown = md.get("show") or show(default)
        text = (md.get("help", "") + (f", must be {md['range'].text()}" if md.get("range") else "")
                + (f" (default: {shown})" if shown is not None else ""))
        parser.add_argument(flag(f.name), dest=f.name, type=typed(kind, f.name), choices=md.get("choices"),
                            default=argparse.SUPPRESS, help=text.strip())
        added.append(f.name)
    return added


def given(args, cls) -> dict:
    """The fields of ``cls`` the user gave on the command line, by name."""
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}


def check_applicable(cls, values: dict, obj) -> None:
    """Raise :class:`BadInput` for an option given that ``obj``'s configuration does not use."""
    for name in values:
        if not applies(cls, name, obj):
            cond = next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("applies", {})
            need = " and ".join(f"{flag(k)} {'/'.join(v) if isinstance(v, tuple) else v}" for k, v in cond.items())
            now = ", ".join(f"{flag(k)} {getattr(obj, k)}" for k in cond)
            raise BadInput(f"{flag(name)} applies only with {need}; it would be ignored with {now}")
