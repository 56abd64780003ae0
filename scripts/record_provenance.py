"""Add provenance to result files written before results recorded it; idempotent.

For each ``RESULTS/*.json`` without a ``code`` record:

- ``code``: refprune's version, and ``commit`` null (unknown) with ``committed_in``, the commit
  that added the file to the repository: the code that made it is at or before that commit.
  ``--made-by SHA`` instead states the commit that made the results not yet committed (for a
  sweep run from a known, unmodified checkout).
- a job's ``data_dir`` (a path on the machine that ran it) is replaced by ``data_sha256``, the
  digests of its data files, read from ``--data-dir`` (MNIST) and ``--fashion-dir``;
- ``reproduce``: the command that reproduces the result (:func:`refprune.experiments.jobs.job_origin`).

Nothing else in the files changes. Usage:
``python scripts/record_provenance.py --data-dir ../shared/data/mnist [--made-by SHA]``
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import refprune
from refprune.data.tasks import DEFAULT_FASHION_DIR
from refprune.experiments.figures import GROUPS, group_jobs
from refprune.experiments.jobs import job_origin
from refprune.util.io import read_json, write_json

ROOT = Path(__file__).resolve().parents[1]
# The scripts whose own result files live in results/, and how each is rerun from its record.
SCRIPT_RESULTS = {
    "study_density.json": lambda rec: "python scripts/study_density.py" + (
        f" --weights {rec['weights_file']}" if "weights_file" in rec else ""),
    "study_ignored_term.json": lambda rec: ("python scripts/study_ignored_term.py --data-dir DATA_DIR "
                                            f"--epochs {rec['epochs']} --every {rec['every']} --lam {rec['lam']:g} "
                                            f"--r0 {rec['r0']:g} --seed {rec['seed']}"),
}


def added_in(results: Path) -> dict:
    """{file name: the commit that first added it} for the files git tracks under ``results``."""
    log = subprocess.run(["git", "-C", str(ROOT), "log", "--diff-filter=A", "--name-only", "--format=@%H", "--",
                          str(results)], capture_output=True, text=True, check=True).stdout
    out, commit = {}, None
    for line in log.splitlines():
        if line.startswith("@"):
            commit = line[1:]
        elif line.strip():
            out[Path(line).name] = commit  # git log runs newest first: the last seen is the first add
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=ROOT / "results")
    p.add_argument("--data-dir", required=True, help="the MNIST IDX directory the MNIST jobs read")
    p.add_argument("--fashion-dir", default=DEFAULT_FASHION_DIR)
    p.add_argument("--made-by", help="the commit that made the results git does not track yet")
    args = p.parse_args(argv)
    group_of = {job["name"]: name for name in reversed(list(GROUPS))
                for job in group_jobs(name, False, args.data_dir, results=args.results, fashion_dir=args.fashion_dir)}
    commits = added_in(args.results)
    changed = 0
    for path in sorted(args.results.glob("*.json")):
        rec = read_json(path)
        if "code" in rec:
            continue
        if path.name in commits:
            code = {"refprune": refprune.__version__, "commit": None, "modified": None,
                    "committed_in": commits[path.name]}
        elif args.made_by:
            code = {"refprune": refprune.__version__, "commit": args.made_by, "modified": False}
        else:
            raise SystemExit(f"{path.name} is not committed: say which commit made it with --made-by")
        if "job" in rec:
            job = dict(rec["job"])
            local = {"mnist": args.data_dir, "fashion-mnist": args.fashion_dir}.get(job.get("data"))
            if job.get("data_dir") is not None:
                job["data_dir"] = local
            extra = job_origin(job, group_of.get(job["name"]))
            rec["job"] = {k: v for k, v in rec["job"].items() if k != "data_dir"}
            rec = {**rec, "code": code, **extra}
        else:
            rec = {**rec, "code": code, "reproduce": SCRIPT_RESULTS[path.name](rec)}
        write_json(path, rec)
        changed += 1
    print(f"record_provenance: {changed} result file(s) updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
