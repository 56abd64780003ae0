"""Command-line interface: ``refprune <command> ...`` (also ``python -m refprune``).

Every command turns a bad argument into one line on stderr and exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__


def parse_layers(text: str) -> tuple[int, ...]:
    """``"784,512,10"`` → ``(784, 512, 10)``, for argparse."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layers must be comma-separated integers, got {text!r}") from None
    if len(sizes) < 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"--layers needs at least two sizes, all >= 1, got {text!r}")
    return sizes


def add_gradcheck_parser(sub) -> None:
    p = sub.add_parser("gradcheck", help="check every LRP gradient against finite differences",
                       description="Check every LRP gradient of one case against float64 central "
                                   "differences; exit status 0 only if all pass.")
    p.add_argument("--layers", type=parse_layers, default=(6, 5, 4, 3), help="layer sizes (default 6,5,4,3)")
    p.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    p.add_argument("--loss", choices=("ce", "mse"), default="ce")
    p.add_argument("--r", type=float, default=0.5, help="pruning ratio in [0, 1) (default 0.5)")
    p.add_argument("--tau0", type=float, default=0.1, help="τ = tau0 × std(weights) (default 0.1)")
    p.add_argument("--lam", type=float, default=0.0, help="regulariser weight λ (default 0)")
    p.add_argument("--threshold", choices=("empirical", "smoothed"), default="empirical")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="dtype of the analytic gradients (finite differences are always float64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--band", type=int, default=None,
                   help="place N weights within the transition band of t (default: 6 when tau0 < 1e-3, else 0)")
    p.add_argument("--max-coords", type=int, default=None, help="coordinates checked per tensor")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(run=run_gradcheck)


def run_gradcheck(args) -> int:
    from .gradcheck import FD_RTOL, MAX_COORDS, Case, gradcheck

    case = Case(layers=args.layers, batch=args.batch, loss=args.loss, r=args.r, tau0=args.tau0,
                lam=args.lam, seed=args.seed, threshold=args.threshold, dtype=args.dtype, band=args.band)
    report = gradcheck(case, max_coords=args.max_coords or MAX_COORDS)
    if args.json:
        print(json.dumps(report.as_dicts(), indent=2))
        return 0 if report.passed else 1
    print(f"gradcheck  layers={','.join(map(str, case.layers))} batch={case.batch} loss={case.loss} "
          f"r={case.r} tau0={case.tau0} lam={case.lam} threshold={case.threshold} "
          f"dtype={case.dtype} seed={case.seed}  (pass: max rel err <= {FD_RTOL[case.dtype]:g})")
    print(f"{'gradient':<8} {'shape':<10} {'max abs err':>12} {'max rel err':>12} {'checked':>8} {'skipped':>8}  result")
    for row in report.rows:
        shape = "x".join(map(str, row.shape)) or "scalar"
        print(f"{row.name:<8} {shape:<10} {row.max_abs_err:>12.3e} {row.max_rel_err:>12.3e} "
              f"{row.checked:>8d} {row.skipped:>8d}  {row.status}{'  (' + row.note + ')' if row.note else ''}")
    for note in report.notes:
        print(f"note: {note}")
    worst = max((row.max_rel_err for row in report.rows), default=float("nan"))
    print(f"verdict: {'PASS' if report.passed else 'FAIL'} (worst relative error {worst:.3e})")
    return 0 if report.passed else 1


def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a network (dense or LRP) and write a run directory",
                       description="Train one network with Algorithm 1 (LRP) or plainly (dense); write the "
                                   "configuration, history, pruned parameters and summary.json to --out.")
    p.add_argument("--data", choices=("synthetic", "mnist", "fashion-mnist"), default="synthetic",
                   help="task (default synthetic: needs no files)")
    p.add_argument("--data-dir", help="directory with the four MNIST-format IDX files (gzip or raw; "
                                        "MNIST and Fashion-MNIST use the same names)")
    p.add_argument("--alpha", type=int, default=20, help="frequency of the synthetic target, eq. (3.1) (default 20)")
    p.add_argument("--method", choices=("dense", "lrp"), default="lrp")
    p.add_argument("--variant", choices=("exact", "published"), default="exact",
                   help="gradient path: exact (METHOD §3) or the published code's (§6)")
    p.add_argument("--deviations", default="P1,P2,P3,P4",
                   help="published variant: which of P1..P4 to apply (comma-separated, or 'none')")
    p.add_argument("--layers", type=parse_layers, help="layer sizes (default 1,32,32,32,1 or 784,512,512,10)")
    p.add_argument("--r0", type=float, default=0.5)
    p.add_argument("--tau0", type=float, default=1e-2, help="τ0, times std of the initial weights")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lr-r", type=float, default=1e-4)
    p.add_argument("--lr-tau", type=float, default=1e-6)
    p.add_argument("--lam", type=float, default=0.0, help="λ of the regulariser λ(1 − r)²")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--density", choices=("direct", "fft"), default="direct",
                   help="dt/dr density: direct KDE sum at t reflected at 0 (exact; default) or the "
                        "thesis's binned FFT estimate")
    p.add_argument("--out", help="run directory (default runs/<data>-<method>-seed<seed>)")
    p.set_defaults(run=run_train)


def parse_deviations(text: str) -> tuple:
    if text.strip().lower() == "none":
        return ()
    return tuple(part.strip().upper() for part in text.split(",") if part.strip())


def run_train(args) -> int:
    from pathlib import Path

    from .rundir import run_training

    out = Path(args.out or f"runs/{args.data}-{args.method}"
               f"{'-' + args.variant if args.method == 'lrp' else ''}-seed{args.seed}").resolve()
    run_training(args, parse_deviations(args.deviations), out)
    return 0


def add_figures_parser(sub) -> None:
    p = sub.add_parser("figures", help="redraw the thesis's figures and tables from results/",
                       description="Redraw every figure and table of the thesis from the results "
                                   "directory; with --recompute, first run the jobs whose results are missing.")
    p.add_argument("--only", action="append", help="figure group (masks, synthetic, mnist, deviations); repeatable")
    p.add_argument("--out", help="figures directory (default: figures/ of the checkout)")
    p.add_argument("--results", help="results directory (default: results/ of the checkout)")
    p.add_argument("--recompute", action="store_true", help="run missing jobs before plotting")
    p.add_argument("--quick", action="store_true",
                   help="every pipeline at tiny size with stand-in data, in a temporary directory "
                        "unless --out/--results are given (a smoke test)")
    p.add_argument("--data-dir", help="MNIST IDX directory, needed to compute the MNIST jobs")
    p.add_argument("--jobs", type=int, default=1, help="jobs run at once (default 1)")
    p.add_argument("--shard", help="run only shard i of N of the jobs, as i/N")
    p.add_argument("--scheduler", help="run the jobs on this Dask scheduler (address), or on local:N worker "
                                       "processes (needs the cluster extra)")
    p.set_defaults(run=run_figures_cmd)


def run_figures_cmd(args) -> int:
    import tempfile
    from pathlib import Path

    from .figures import GROUPS, run_figures
    from .sweep import parse_shard

    names = args.only or list(GROUPS)
    shard = parse_shard(args.shard)
    if args.quick:
        tmp = Path(tempfile.mkdtemp(prefix="refprune-quick-"))
        results = Path(args.results) if args.results else tmp / "results"
        out = Path(args.out) if args.out else tmp / "figures"
        run_figures(names, results, out, quick=True, recompute=True, n_jobs=args.jobs, shard=shard,
                    scheduler=args.scheduler)
    else:
        from .figures.common import repo_root

        results = Path(args.results) if args.results else repo_root() / "results"
        out = Path(args.out) if args.out else repo_root() / "figures"
        run_figures(names, results.resolve(), out.resolve(), recompute=args.recompute,
                    data_dir=args.data_dir, n_jobs=args.jobs, shard=shard, scheduler=args.scheduler)
    print(f"figures in {out.resolve()} (index: {(out / 'README.md').resolve()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refprune", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"refprune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    add_gradcheck_parser(sub)
    add_train_parser(sub)
    from .cli_vectors import add_vectors_parsers
    add_vectors_parsers(sub)
    add_figures_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as exc:
        print(f"refprune {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
