"""`refprune figures --quick`: every pipeline end to end at tiny size, into a temporary directory."""

import re

from refprune.cli import main
from refprune.figures import GROUPS


def test_quick_figures_produce_every_file(tmp_path, capsys):
    out, results = tmp_path / "figures", tmp_path / "results"
    assert main(["figures", "--quick", "--out", str(out), "--results", str(results)]) == 0
    index = (out / "README.md").read_text()
    files = re.findall(r"\]\(([^)]+)\)", index)
    expected_stems = {"fig2_1_hard_mask", "fig2_2_soft_mask", "fig3_1_data_alpha1", "fig3_2_data_alpha25",
                      "fig4_1_overfit_loss", "fig4_2_overfit_r2", "fig4_3_data_alpha20_22",
                      "fig4_4_post_pruning_mean", "fig4_5_post_pruning_minmax", "fig4_6_pre_pruning_mean",
                      "fig4_7_pre_pruning_minmax", "fig4_8_mnist_dense"}
    for variant in ("exact", "published"):
        for run in ("r00.50_lam0", "r00.95_lam0", "r00.50_lam10", "r00.95_lam10"):
            expected_stems |= {f"lrp_{variant}_{run}_{k}" for k in ("curves", "r_tau", "sparsity", "masks")}
        expected_stems |= {f"rsweep_{variant}_lam0", f"rsweep_{variant}_lam10"}
    expected_stems |= {"study_deviations_lam0", "study_deviations_lam10"}
    made = {f.rsplit(".", 1)[0] for f in files}
    assert expected_stems <= made, expected_stems - made
    for stem in expected_stems:
        for ext in ("png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000
    for name in ("table4_6.md", "table4_6.csv", "rsweep_vs_thesis.md", "rsweep_vs_thesis.csv"):
        assert (out / name).stat().st_size > 0
    assert "Table 4.6" in index and "Quick mode" in index and "## r0 sweep" in index
    # a second call only redraws: every job is already done
    assert main(["figures", "--quick", "--out", str(out), "--results", str(results)]) == 0
    assert "0 to run" in capsys.readouterr().out


def test_unknown_group_is_a_one_line_error(capsys, tmp_path):
    assert main(["figures", "--only", "nope", "--out", str(tmp_path), "--results", str(tmp_path)]) == 2
    assert "unknown figure group" in capsys.readouterr().err
    assert set(GROUPS) == {"masks", "synthetic", "mnist", "deviations"}


def test_plotting_with_partial_results_draws_what_it_can(tmp_path):
    from refprune.figures import run_figures
    out = tmp_path / "figures"
    entries = run_figures(list(GROUPS), tmp_path / "empty-results", out, log=None)
    stems = {e["stem"] for e in entries}
    assert {"fig2_1_hard_mask", "fig3_1_data_alpha1"} <= stems  # need no results
    assert not any(s.startswith(("lrp_", "fig4_4", "rsweep_")) for s in stems)
    assert (out / "README.md").exists()


def test_coarse_to_fine_is_a_permutation_that_starts_with_the_ends_and_the_middle():
    from refprune.figures.mnist import coarse_to_fine
    values = [round(0.1 * i, 1) for i in range(1, 10)]
    order = coarse_to_fine(values[::-1])
    assert sorted(order) == values
    assert order[:3] == [0.1, 0.9, 0.5]
    assert coarse_to_fine([0.7, 0.3]) == [0.3, 0.7]


def test_the_sweep_figure_draws_only_the_longest_protocol_present():
    from refprune.figures.mnist import longest_protocol
    recs = [{"job": {"name": n, "config": {"epochs": e}}} for n, e in (("a_e2", 2), ("b_e15", 15), ("c_e15", 15))]
    assert [r["job"]["name"] for r in longest_protocol(recs)] == ["b_e15", "c_e15"]
    assert longest_protocol([]) == []


def test_reading_numbers_script_prints_every_section_from_the_committed_results():
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "scripts" / "reading_numbers.py")],
                         capture_output=True, text=True, check=True).stdout
    for title in ("Overfit R² per α", "pruning after training", "pruning before training", "Table 4.6 runs"):
        assert title in out
    assert "(no results)" not in out
