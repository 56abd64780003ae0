"""``refprune vectors`` and ``refprune compare``: golden vectors for other implementations.

Exit status of ``compare``: 0 if every supplied quantity matches, 1 on any
mismatch, 2 on a bad candidate or argument (one line on stderr, from
:func:`refprune.cli.main.main`).
"""

from __future__ import annotations

import argparse
import json

from refprune.cli.options import nonempty


def case_names(text: str) -> list:
    """argparse type of --cases: comma-separated names, at least one."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"must name at least one case, got {text!r}")
    return names


def add_vectors_parsers(sub) -> None:
    """Add the ``vectors`` and ``compare`` subcommands to the refprune parser."""
    p = sub.add_parser("vectors", help="write the golden-vector cases (.npz each) and manifest.json",
                       description="Write every golden-vector case (inputs and reference outputs of one "
                                   "LRP pass) as DIR/<case>.npz, and DIR/manifest.json. Format: "
                                   "docs/vectors.md.")
    p.add_argument("--out", type=nonempty, help="output directory (needed unless --list); an existing one keeps "
                                                "its other cases: the manifest lists them all")
    p.add_argument("--cases", type=case_names, help="comma-separated case names (default: all)")
    p.add_argument("--from", dest="inputs", metavar="INPUTS.npz", type=nonempty,
                   help="compute the reference of your own inputs (docs/vectors.md, Inputs; "
                        "layout = 'out_in' for PyTorch weights) and add it to DIR's manifest")
    p.add_argument("--name", type=nonempty,
                   help="case name for --from (default: the file's 'case' key, else 'user')")
    p.add_argument("--overwrite", action="store_true",
                   help="with --from: replace a case of the same name already in --out (built-in or your own)")
    p.add_argument("--list", action="store_true", help="only list the cases")
    p.set_defaults(run=run_vectors)

    p = sub.add_parser("compare", help="compare a candidate's outputs with a golden-vector case",
                       description="Compare the quantities a candidate .npz supplies with the reference "
                                   "of the case it names, per tolerance tier; diagnose mismatches. Exit "
                                   "status 0 if all match, 1 on a mismatch, 2 on a bad candidate.")
    p.add_argument("candidate", type=nonempty,
                   help="candidate .npz (key 'case' plus any output keys; or carrying its own "
                                     "inputs, judged against a reference computed from them)")
    p.add_argument("--vectors", metavar="DIR", type=nonempty,
                   help="directory written by 'refprune vectors' (default: generate the case's "
                        "reference in memory; generation is deterministic); a candidate carrying its "
                        "own inputs is then judged against DIR's case of its name, its inputs compared")
    p.add_argument("--tier", choices=("float64", "float32"),
                   help="judge every quantity at this tier (default: the case's own, and float32 for a "
                        "quantity stored as float32)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=run_compare)


def run_vectors(args) -> int:
    """``refprune vectors``: write (or list) the cases; print a summary table."""
    from pathlib import Path

    from refprune.cli.options import user_input
    from refprune.vectors.cases import CASE_NAMES, CASES, case_by_name
    from refprune.vectors.files import write_vectors

    if args.inputs is not None:
        return run_vectors_from(args)

    names = args.cases
    with user_input():  # bad names and a missing --out are the user's input, not internal failures
        if args.overwrite:
            raise ValueError("--overwrite applies only with --from (built-in cases are always rewritten)")
        for n in names or ():
            case_by_name(n)
        if not args.list and args.out is None:
            raise ValueError("--out is required (only --list works without it)")
    if args.list:
        for case in CASES if names is None else [case_by_name(n) for n in names]:
            print(f"{case.name:<18} {case.tier:<8} {case.description}")
        return 0
    out = Path(args.out).resolve()
    manifest = write_vectors(out, names)
    print(f"{'case':<18} {'tier':<8} {'layers':<14} {'loss':<4} {'r':>7} {'tau':>10} {'lam':>5}  description")
    for e in manifest["cases"]:
        print(f"{e['name']:<18} {e['tier']:<8} {','.join(map(str, e['layers'])):<14} {e['loss_kind']:<4} "
              f"{shown(e['r'], '.4g'):>7} {shown(e['tau'], '.3g'):>10} {e['lam']:>5g}  {e['description']}")
    print(f"wrote {len(manifest['cases'])} of {len(CASE_NAMES)} cases and manifest.json to {out}")
    return 0


def shown(value, fmt: str) -> str:
    """A manifest number, or a layer-wise list of them joined by "/"."""
    return "/".join(format(v, fmt) for v in value) if isinstance(value, list) else format(value, fmt)


def run_vectors_from(args) -> int:
    """``refprune vectors --from INPUTS.npz --out DIR``: one user case into DIR."""
    from pathlib import Path

    from refprune.cli.options import user_input
    from refprune.vectors.user_cases import add_user_case

    with user_input():  # these are the user's input, not internal failures
        if args.cases or args.list:
            raise ValueError("--from takes no --cases or --list")
        if args.out is None:
            raise ValueError("--out is required with --from")
        out = Path(args.out).resolve()
        entry = add_user_case(Path(args.inputs).resolve(), out, args.name, overwrite=args.overwrite)
    print(f"{entry['name']:<18} {entry['tier']:<8} {','.join(map(str, entry['layers'])):<14} "
          f"{entry['loss_kind']:<4} r={entry['r']:.4g} tau={entry['tau']:.3g} t={entry['t']:.6g} "
          f"dt_dr={entry['dt_dr']:.6g}")
    if not entry["previous_step"]:
        print("note: no previous step (W_prev*, b_prev*, r_prev, tau_prev): compare will skip "
              "the stale-state diagnosis for this case")
    print(f"wrote {entry['file']} and added it to {out / 'manifest.json'}")
    return 0


def run_compare(args) -> int:
    """``refprune compare``: print the report (text or JSON); 0 if all match, else 1."""
    from refprune.cli.options import user_input
    from refprune.util.io import UnreadableFile
    from refprune.vectors.compare import compare_candidate, comparison_dict, format_comparison

    with user_input():  # a bad candidate or vectors folder is the user's input (exit 2)
        try:
            comp = compare_candidate(args.candidate, args.vectors, args.tier)
        except UnreadableFile:
            raise
        except ValueError as exc:  # what is wrong with the candidate's content: name the file
            raise ValueError(f"{args.candidate}: {exc}") from None
    if args.json:
        print(json.dumps(comparison_dict(comp), indent=2))
    else:
        print(format_comparison(comp))
    return 0 if comp.passed else 1
