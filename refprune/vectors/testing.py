"""The oracle in a user's own test suite: a failing test with the table and the diagnosis.

:func:`assert_lrp_matches` compares the outputs of an LRP port with refprune's
reference, exactly as ``refprune compare`` does, and raises ``AssertionError``
whose message is the report ``compare`` prints (the per-quantity table, the
verdict and the diagnosis) when anything differs; :func:`case_inputs` gives a
built-in case's inputs to feed the port. docs/vectors.md section 9 has a
ten-line pytest file. Nothing here needs pytest: any test runner that reports
an ``AssertionError`` will do.
"""

from __future__ import annotations

from pathlib import Path

from refprune.vectors.compare import Comparison, compare_candidate, format_comparison
from refprune.vectors.files import reference_for
from refprune.vectors.schema import n_layers_of, output_keys, text
from refprune.vectors.user_cases import carries_inputs, layout_of, normalised_inputs, read_npz


def case_inputs(case: str, vectors=None) -> dict:
    """The inputs of a case (every key of docs/vectors.md's input table), without its outputs.

    Parameters
    ----------
    case : str
        A built-in case (``refprune vectors --list``), or a case of ``vectors``.
    vectors : path, optional
        A directory written by ``refprune vectors`` (default: the built-in case,
        generated in memory).

    Returns
    -------
    dict
        Input key → array, weights in the (in, out) layout.

    Examples
    --------
    >>> from refprune.vectors.testing import case_inputs
    >>> inputs = case_inputs("ce-tiny")
    >>> inputs["layers"].tolist(), inputs["W1"].shape, "grad_r" in inputs
    ([4, 3, 3], (4, 3), False)
    """
    data, _ = reference_for(case, vectors)
    outputs = set(output_keys(n_layers_of(data["layers"])))
    return {key: value for key, value in data.items() if key not in outputs}


def assert_lrp_matches(outputs: dict, case: str | None = None, inputs=None, vectors=None,
                       tier: str | None = None) -> Comparison:
    """Assert that a port's outputs match refprune's reference; raise with the report if not.

    Parameters
    ----------
    outputs : dict
        Output key → array (any subset of docs/vectors.md's output table), as
        the port computed them; float32 or float64. A ``layout`` key of
        ``"out_in"`` (here or in ``inputs``) reads every weight-shaped array of
        both as PyTorch's (out, in).
    case : str, optional
        The case the outputs were computed for (a built-in one, or one of
        ``vectors``).
    inputs : dict or path, optional
        The port's own inputs (the keys of the input table, e.g. the
        ``INPUTS.npz`` of ``refprune vectors --from``): the reference is
        computed from them, or, with ``vectors``, is that directory's case
        of the same name, whose inputs must be equal.
    vectors : path, optional
        A directory written by ``refprune vectors``.
    tier : {"float64", "float32"}, optional
        Judge every quantity at this tier (default: the case's, and float32
        for a quantity stored as float32).

    Returns
    -------
    Comparison
        When every supplied quantity matches.

    Raises
    ------
    AssertionError
        When a quantity differs; the message is ``refprune compare``'s report.
    ValueError
        Bad arguments or outputs (an unknown case, no case nor inputs, a wrong
        shape or dtype, NaN), as ``refprune compare`` refuses them.

    Examples
    --------
    >>> from refprune.vectors.cases import case_by_name, make_vectors
    >>> from refprune.vectors.testing import assert_lrp_matches
    >>> ref = make_vectors(case_by_name("ce-tiny"))
    >>> assert_lrp_matches({"grad_tau": ref["grad_tau"], "grad_r": ref["grad_r"]}, case="ce-tiny").passed
    True
    >>> assert_lrp_matches({"grad_tau": ref["grad_tau"], "dt_dr": -ref["dt_dr"]}, case="ce-tiny")
    Traceback (most recent call last):
        ...
    AssertionError: compare  case=ce-tiny  tier=float64 ...
    ...
    diagnosis: sign flip of dt/dr (the sign of METHOD §6 P2) [dt_dr_sign]
    ...
    """
    __tracebackhide__ = True  # pytest: report the user's test line and this message, not this frame
    candidate = dict(read_npz(inputs) if isinstance(inputs, (str, Path)) else inputs or {})
    if "layout" in candidate and "layout" in outputs and layout_of(candidate) != layout_of(outputs):
        raise ValueError(f"inputs are layout {layout_of(candidate)} but outputs {layout_of(outputs)}: "
                         "one layout applies to both")
    candidate.update(outputs)
    if inputs is not None and not carries_inputs(candidate):
        normalised_inputs(candidate)  # raises: which input keys are missing
    if case is not None:
        if "case" in candidate and text(candidate, "case") != case:
            raise ValueError(f"case={case!r} but the outputs or inputs name case {text(candidate, 'case')!r}")
        candidate["case"] = case
    elif inputs is None and "case" not in candidate:
        raise ValueError("say which reference: case='<name>' (a built-in case) or inputs=<your inputs>")
    comp = compare_candidate(candidate, vectors, tier)
    if not comp.passed:
        raise AssertionError(format_comparison(comp))
    return comp
