"""Options of the configuration dataclasses: help text, choices and parsing kept on the field.

A configuration dataclass (``TrainConfig``, ``TaskSpec``, the gradient check's
``Case``) declares each field with :func:`option`; the command line
(:mod:`refprune.cli.options`) builds its options, help and defaults from these
fields, so nothing is written twice. ``applies`` says when the field is used
(e.g. ``{"method": "lrp"}``): a value given for a field that does not apply is
an error, and the run's config.json leaves such fields out.
"""

from __future__ import annotations

from dataclasses import field, fields


def option(default, help: str, *, choices=None, parse=None, applies=None, show=None, cli: bool = True):
    """A dataclass field with its command-line description in ``metadata``.

    Parameters
    ----------
    default
        The default value (also shown by ``--help``).
    help : str
        One phrase; ``--help`` appends the default.
    choices : sequence, optional
        Allowed values.
    parse : callable, optional
        str → value (default: the type of ``default``).
    applies : dict, optional
        field name → required value (or tuple of values) for this field to be used.
    show : str, optional
        How ``--help`` shows the default (default: derived from the value).
    cli : bool
        Whether the command line offers this field.
    """
    meta = {"help": help, "choices": choices, "parse": parse, "applies": applies or {}, "show": show,
            "cli": cli}
    return field(default=default, metadata=meta)


def applies(cls_or_obj, name: str, values) -> bool:
    """Whether field ``name`` is used, given the configuration ``values`` (dict or object)."""
    cond = next(f for f in fields(cls_or_obj) if f.name == name).metadata.get("applies", {})
    get = values.get if isinstance(values, dict) else lambda k, d=None: getattr(values, k, d)
    return all(get(k) in (v if isinstance(v, tuple) else (v,)) for k, v in cond.items())


def condition_text(cls_or_obj, name: str) -> str:
    """``"method = lrp and variant = published"``: when field ``name`` applies."""
    cond = next(f for f in fields(cls_or_obj) if f.name == name).metadata.get("applies", {})
    return " and ".join(f"{k} = {'/'.join(v) if isinstance(v, tuple) else v}" for k, v in cond.items())


def applied_dict(obj) -> dict:
    """The fields of a configuration object that apply, by name (tuples as lists)."""
    out = {}
    for f in fields(obj):
        if applies(obj, f.name, obj):
            value = getattr(obj, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out
