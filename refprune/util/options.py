"""Options of the configuration dataclasses: help text, choices and parsing kept on the field.

A configuration dataclass (``TrainConfig``, ``TaskSpec``, the gradient check's
``Case``) declares each field with :func:`option`; the command line
(:mod:`refprune.cli.options`) builds its options, help and defaults from these
fields, so nothing is written twice. ``applies`` says when the field is used
(e.g. ``{"method": "lrp"}``): a value given for a field that does not apply is
an error, and the run's config.json leaves such fields out. ``range`` (a
:class:`Range`) bounds a numeric field: :func:`check_ranges` enforces it when the
configuration is made, and ``--help`` states it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np


@dataclass(frozen=True)
class Range:
    """The values a numeric option takes: an integer or a finite real number between bounds.

    ``low``/``high`` (None: unbounded) are included unless ``low_open``/``high_open``.

    Examples
    --------
    >>> from refprune.util.options import Range
    >>> Range(0, 1, high_open=True).text(), Range(1, integer=True).text()
    ('in [0, 1)', 'an integer >= 1')
    >>> Range(1, integer=True).problem(0)
    'must be >= 1, got 0'
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False

    def bounds_text(self) -> str:
        """``">= 1"``, ``"> 0"``, ``"in [0, 1)"``, or ``""`` when unbounded."""
        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return ""

    def text(self) -> str:
        """What ``--help`` says: ``"an integer >= 1"``, ``"in [0, 1)"``, ``"> 0"``."""
        bounds = self.bounds_text()
        if self.integer:
            return f"an integer {bounds}".strip()
        return bounds or "a finite number"

    def problem(self, value) -> str | None:
        """None if ``value`` is in the range, else what is wrong (``"must be >= 1, got 0"``)."""
        if self.integer:
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                return f"must be an integer, got {value!r}"
            shown = value
        else:
            try:
                number = float(value)
            except (TypeError, ValueError):
                return f"must be a real number, got {value!r}"
            if isinstance(value, (bool, np.bool_)) or np.ndim(value) != 0:
                return f"must be a real scalar, got {value!r}"
            if not math.isfinite(number):
                return f"must be finite, got {number!r}"
            value = shown = number
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return f"must be {self.bounds_text()}, got {shown!r}" if below or above else None


RATIO = Range(0.0, 1.0, high_open=True)  # a pruning ratio
POSITIVE = Range(0.0, low_open=True)
NONNEGATIVE = Range(0.0)


def check_ranges(obj) -> None:
    """Raise ValueError (``"epochs must be >= 1, got 0"``) for a field of ``obj`` outside its :class:`Range`.

    A field whose value is None (an optional field left unset) is not checked.
    """
    for f in fields(obj):
        bounds = f.metadata.get("range")
        value = getattr(obj, f.name)
        if bounds is not None and value is not None:
            problem = bounds.problem(value)
            if problem:
                raise ValueError(f"{f.name} {problem}")


def option(default, help: str, *, choices=None, parse=None, applies=None, show=None, cli: bool = True,
           range: Range | None = None):
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
    range : Range, optional
        The values the field takes (checked by :func:`check_ranges`, stated by ``--help``).
    """
    meta = {"help": help, "choices": choices, "parse": parse, "applies": applies or {}, "show": show,
            "cli": cli, "range": range}
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
