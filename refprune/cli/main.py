"""Command-line interface: ``refprune <command> ...`` (also ``python -m refprune``).

Exit status: 0 success; 1 a failure inside the program (one line, with a hint
to rerun with ``--debug`` for the traceback); 2 a bad argument, file or data
set (one line on stderr naming the option, never a traceback); 3 a training
run that diverged; 130 interrupted (Ctrl-C). The options of ``train`` and
``gradcheck`` are generated from their configuration dataclasses
(:mod:`refprune.cli.options`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path

from refprune import __version__
from refprune.cli.options import (
    BadInput,
    Parser,
    add_options,
    check_applicable,
    given,
    nonempty,
    ranged,
    show,
    user_input,
)
from refprune.data.tasks import DEFAULT_FASHION_DIR
from refprune.util.options import Range

EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_DIVERGED, EXIT_INTERRUPTED = 1, 2, 3, 130

AT_LEAST_ONE = Range(1, integer=True)


def add_gradcheck_parser(sub) -> None:
    """The ``gradcheck`` command: one oracle case (options from :class:`refprune.oracle.case.Case`)."""
    from refprune.oracle.case import Case
    from refprune.oracle.gradcheck import MAX_COORDS

    p = sub.add_parser("gradcheck", help="check every LRP gradient against finite differences",
                       description="Check every LRP gradient of one case against float64 central "
                                   "differences; exit status 0 only if all pass.")
    add_options(p, Case)
    p.add_argument("--max-coords", type=ranged(int, AT_LEAST_ONE, "max_coords"), default=None,
                   help=f"coordinates checked per tensor, must be {AT_LEAST_ONE.text()} (default: {MAX_COORDS})")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(run=run_gradcheck)


def run_gradcheck(args) -> int:
    """Run ``refprune gradcheck``: print the rows; 0 if every gradient passes, 1 otherwise."""
    from refprune.oracle.case import Case
    from refprune.oracle.gradcheck import FD_RTOL, MAX_COORDS, gradcheck, prepare

    with user_input([f.name for f in dataclasses.fields(Case)]):
        values = given(args, Case)
        case = Case(**values)
        check_applicable(Case, values, case)
        prepared = prepare(case)  # a case no verdict would mean anything for
    report = gradcheck(case, max_coords=args.max_coords or MAX_COORDS, prepared=prepared)
    if args.json:
        print(json.dumps(report.as_dicts(), indent=2))
        return 0 if report.passed else 1
    from refprune.util.options import applies

    described = " ".join(f"{f.name}={show(getattr(case, f.name))}" for f in dataclasses.fields(Case)
                         if applies(Case, f.name, case))
    print(f"gradcheck  {described}  (pass: max rel err <= {FD_RTOL[case.dtype]:g})")
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
    """The ``train`` command: options from the task and :class:`refprune.train.loop.TrainConfig`."""
    from refprune.data.tasks import TaskSpec
    from refprune.train.loop import TrainConfig

    p = sub.add_parser("train", help="train a network (dense or LRP) and write a run directory",
                       description="Train one network with Algorithm 1 (LRP) or plainly (dense); write the "
                                   "configuration, history, checkpoint, pruned parameters and summary.json "
                                   "to --out. Every option is checked before the first step.")
    add_options(p, TaskSpec)
    add_options(p, TrainConfig)
    p.add_argument("--out", type=nonempty, help="run directory (default: runs/<data>-<method>[-<variant>]-seed<seed>, "
                                                "under the current directory)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--overwrite", action="store_true", help="replace an existing run directory whole")
    mode.add_argument("--resume", action="store_true",
                      help="continue the stopped run in --out from its last completed epoch (same options)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    p.add_argument("--plot", action="store_true", help="draw the run's curves (refprune plot) at the end")
    p.set_defaults(run=run_train)


def default_out(cfg, task) -> Path:
    """runs/<data>-<method>[-<variant>]-seed<seed> under the current directory."""
    variant = "-" + cfg.variant if cfg.method == "lrp" else ""
    return Path(f"runs/{task.data}-{cfg.method}{variant}-seed{cfg.seed}").resolve()


def resume_command(argv, out: Path) -> str:
    """The command that resumes this run: the same arguments with --resume."""
    args = [a for a in argv if a not in ("--overwrite", "--resume")]
    if "--out" not in args and not any(a.startswith("--out=") for a in args):
        args += ["--out", str(out)]
    return "refprune " + " ".join(shlex.quote(a) for a in args) + " --resume"


def train_plan(args):
    """Every check of ``refprune train`` before any work: configuration, output location, data."""
    from refprune.data.tasks import LOSS_OF_TASK, TaskSpec
    from refprune.train.loop import TrainConfig
    from refprune.train.rundir import prepare_run

    names = [f.name for f in dataclasses.fields(TrainConfig) + dataclasses.fields(TaskSpec)] + ["out", "resume"]
    with user_input(names):
        cfg_given, task_given = given(args, TrainConfig), given(args, TaskSpec)
        task = TaskSpec(**task_given)
        cfg = TrainConfig(loss=LOSS_OF_TASK[task.data], **cfg_given)
        check_applicable(TaskSpec, task_given, task)
        check_applicable(TrainConfig, cfg_given, cfg)
        out = Path(args.out).resolve() if args.out is not None else default_out(cfg, task)
        try:
            return prepare_run(cfg, task, out, overwrite=args.overwrite, resume=args.resume)
        except MemoryError:
            raise ValueError("layers: not enough memory to load the data or build the network") from None


def run_train(args) -> int:
    """Run ``refprune train``: check every option, train, write the run directory; return the exit status."""
    from refprune.train.checkpoint import CHECKPOINT
    from refprune.train.loop import Diverged
    from refprune.train.progress import Progress
    from refprune.train.rundir import completed_epochs, run_training

    plan = train_plan(args)
    log = None if args.quiet else (lambda line: print(line, flush=True))
    progress = None if args.quiet else (lambda epochs, steps: Progress(epochs, steps))
    try:
        run_training(plan, log=log, progress=progress)
    except KeyboardInterrupt:
        done = completed_epochs(plan.out)
        if done:
            print(f"interrupted: {done} of {plan.cfg.epochs} epochs are saved in {plan.out}; resume with: "
                  f"{resume_command(args.argv, plan.out)}", file=sys.stderr)
        else:
            print("interrupted before the first epoch ended: nothing to resume; rerun with --overwrite",
                  file=sys.stderr)
        return EXIT_INTERRUPTED
    except Diverged as exc:
        done = completed_epochs(plan.out)
        kept = f"the last good checkpoint (epoch {done}) is {plan.out / CHECKPOINT}" if done else "no epoch completed"
        print(f"refprune train: error: {exc}; {kept}", file=sys.stderr)
        return EXIT_DIVERGED
    if args.plot:
        from refprune.experiments.plot_run import plot_run

        path = plot_run(plan.out)
        if log:
            log(f"plot in {path}")
    return 0


def add_plot_parser(sub) -> None:
    """The ``plot`` command: a run directory's curves as ``run.png``."""
    p = sub.add_parser("plot", help="draw a run directory's curves as PNG",
                       description="Draw the curves of a run directory written by 'refprune train' into it "
                                   "as run.png: loss and accuracy or R² per epoch under the soft and the hard "
                                   "mask, r, τ and t per step, and sparsity per layer.")
    p.add_argument("run_dir", type=nonempty, help="run directory")
    p.set_defaults(run=run_plot)


def run_plot(args) -> int:
    """Run ``refprune plot``: draw ``RUN_DIR/run.png`` and say where it is."""
    from refprune.experiments.plot_run import load_run, plot_run

    with user_input():
        run = load_run(Path(args.run_dir).resolve())
    print(f"plot in {plot_run(Path(args.run_dir).resolve(), run)}")
    return 0


def add_figures_parser(sub) -> None:
    """The ``figures`` command: redraw (and with ``--recompute`` first compute) the thesis's figures."""
    p = sub.add_parser("figures", help="redraw the thesis's figures and tables from results/",
                       description="Redraw every figure and table of the thesis from the results "
                                   "directory; with --recompute, first run the jobs whose results are missing.")
    p.add_argument("--only", action="append", type=nonempty,
                   help="figure group (masks, synthetic, mnist, deviations, protocols, "
                                                   "matched); repeatable")
    p.add_argument("--out", type=nonempty, help="figures directory (default: figures/ of the checkout)")
    p.add_argument("--results", type=nonempty, help="results directory (default: results/ of the checkout)")
    p.add_argument("--recompute", action="store_true", help="run missing jobs before plotting")
    p.add_argument("--quick", action="store_true",
                   help="every pipeline at tiny size with stand-in data, in a temporary directory "
                        "unless --out/--results are given (a smoke test)")
    p.add_argument("--data-dir", type=nonempty, help="MNIST IDX directory, needed to compute the MNIST jobs")
    p.add_argument("--fashion-dir", type=nonempty, default=DEFAULT_FASHION_DIR,
                   help="Fashion-MNIST IDX directory, for the matched group's Fashion-MNIST jobs "
                        f"(default: {DEFAULT_FASHION_DIR})")
    p.add_argument("--jobs", type=ranged(int, AT_LEAST_ONE, "jobs"), default=1,
                   help=f"jobs run at once, must be {AT_LEAST_ONE.text()} (default: 1)")
    p.add_argument("--shard", help="run only shard i of N of the jobs, as i/N")
    p.add_argument("--scheduler", help="run the jobs on this Dask scheduler (address), or on local:N worker "
                                       "processes (needs the cluster extra)")
    p.set_defaults(run=run_figures_cmd)


def check_results_folder(results: Path) -> None:
    """``figures`` without --recompute needs a results folder that exists and holds results."""
    if not results.is_dir():
        raise BadInput(f"--results {results}: no such folder (pass --recompute to compute the results)")
    if not any(p for p in results.iterdir() if not p.name.startswith(".")):
        raise BadInput(f"--results {results} is empty (pass --recompute to compute the results)")


def run_figures_cmd(args) -> int:
    """Run ``refprune figures``: the jobs asked for, then the figures, tables and index."""
    import tempfile

    from refprune.experiments.figures import GROUPS, run_figures
    from refprune.experiments.sweep import parse_shard

    with user_input():
        names = args.only or list(GROUPS)
        shard = parse_shard(args.shard)
        if args.quick:  # a temporary directory only for what --out and --results do not place
            tmp = Path(tempfile.mkdtemp(prefix="refprune-quick-")) if args.results is None or args.out is None else None
            results = Path(args.results) if args.results is not None else tmp / "results"
            out = Path(args.out) if args.out is not None else tmp / "figures"
            try:
                run_figures(names, results, out, quick=True, recompute=True, n_jobs=args.jobs, shard=shard,
                            scheduler=args.scheduler)
            except BaseException:
                if tmp is not None and not any(tmp.iterdir()):
                    tmp.rmdir()  # nothing was made: leave nothing behind
                raise
        else:
            from refprune.experiments.figures.common import repo_root

            results = Path(args.results) if args.results is not None else repo_root() / "results"
            out = Path(args.out) if args.out is not None else repo_root() / "figures"
            if not args.recompute and set(names) <= set(GROUPS):  # run_figures names unknown groups
                check_results_folder(results.resolve())
            run_figures(names, results.resolve(), out.resolve(), recompute=args.recompute,
                        data_dir=args.data_dir, n_jobs=args.jobs, shard=shard, scheduler=args.scheduler,
                        fashion_dir=args.fashion_dir)
    print(f"figures in {out.resolve()} (index: {(out / 'README.md').resolve()})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``refprune`` command and all its subcommands."""
    parser = Parser(prog="refprune", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"refprune {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True)
    add_gradcheck_parser(sub)
    add_train_parser(sub)
    from refprune.cli.vectors import add_vectors_parsers
    add_vectors_parsers(sub)
    add_figures_parser(sub)
    add_plot_parser(sub)
    for p in sub.choices.values():
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an internal error")
    return parser


def main(argv=None) -> int:
    """Run one ``refprune`` command; return its exit status (0, or 1, 2, 3, 130 as the module says)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    name = f"refprune {args.command}"
    try:
        return args.run(args)
    except BadInput as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:  # a file the user named cannot be read or written
        if args.debug:
            raise
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # noqa: BLE001 - reported, with the way to see the traceback
        if args.debug:
            raise
        print(f"{name}: internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
