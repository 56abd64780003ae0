"""`refprune figures --quick`: every pipeline end to end at tiny size, into a temporary directory."""

import re
from pathlib import Path

import pytest

from refprune.cli.main import main
from refprune.experiments.figures import GROUPS
from refprune.experiments.figures.common import repo_root


@pytest.mark.slow
def test_quick_figures_produce_every_file(tmp_path, capsys):
    out, results = tmp_path / "figures", tmp_path / "results"
    assert main(["figures", "--quick", "--out", str(out), "--results", str(results)]) == 0
    index = (out / "README.md").read_text()
    files = re.findall(r"\]\(([^)]+)\)", index)
    expected_stems = {"fig2_1_hard_mask", "fig2_2_soft_mask", "fig3_1_data_alpha1", "fig3_2_data_alpha25",
                      "fig4_1_overfit_loss", "fig4_2_overfit_r2", "fig4_3_data_alpha20_22",
                      "fig4_4_post_pruning_mean", "fig4_5_post_pruning_minmax", "fig4_6_pre_pruning_mean",
                      "fig4_7_pre_pruning_minmax", "fig4_8_mnist_dense", "fig3_3_mnist_samples"}
    for variant in ("exact", "published"):
        for run in ("r00.50_lam0", "r00.95_lam0", "r00.50_lam10", "r00.95_lam10"):
            expected_stems |= {f"lrp_{variant}_{run}_{k}" for k in ("curves", "r_tau", "sparsity", "masks")}
        expected_stems |= {f"rsweep_{variant}_lam0", f"rsweep_{variant}_lam10"}
    for run in ("r00.50_lam0", "r00.95_lam0", "r00.50_lam10", "r00.95_lam10"):
        expected_stems.add(f"lrp_{run}_exact_vs_published")
        # the adopted protocol's: one figure per run and variant (mean over the seeds), the overlay
        expected_stems |= {f"proto_ddp2_lrp_{v}_{run}" for v in ("exact", "published")}
        expected_stems.add(f"proto_ddp2_lrp_{run}_exact_vs_published")
    expected_stems.add("proto_ddp2_fig4_8_mnist_dense")
    expected_stems |= {"study_deviations_lam0", "study_deviations_lam10"}
    made = {f.rsplit(".", 1)[0] for f in files}
    assert expected_stems <= made, expected_stems - made
    for stem in expected_stems:
        for ext in ("png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000
    tables = ["table4_6", "rsweep_vs_thesis", "protocol_hypotheses", "post_pruning_hypotheses", "table4_1_settings",
              "mnist_dense_vs_thesis", "lrp_dense_wall_time"] + [f"table4_{k}" for k in (2, 3, 4, 5)]
    for name in tables:
        for ext in ("md", "csv"):
            assert (out / f"{name}.{ext}").stat().st_size > 0
    assert "Table 4.6" in index and "Quick mode" in index and "## r0 sweep" in index
    for table in ("Table 4.2", "Table 4.3", "Table 4.4", "Table 4.5", "Fig. 3.3"):
        assert f"| {table}" in index  # named in the index, with its command
    assert "`refprune figures --only mnist`" in index
    # a second call only redraws: every job is already done
    assert main(["figures", "--quick", "--out", str(out), "--results", str(results)]) == 0
    assert "0 to run" in capsys.readouterr().out


def test_the_default_results_and_figures_are_those_of_this_checkout():
    root = Path(__file__).resolve().parents[1]
    assert repo_root() == root and (root / "results").is_dir() and (root / "figures").is_dir()


def test_unknown_group_is_a_one_line_error(capsys, tmp_path):
    assert main(["figures", "--only", "nope", "--out", str(tmp_path), "--results", str(tmp_path)]) == 2
    assert "unknown figure group" in capsys.readouterr().err
    assert set(GROUPS) == {"masks", "synthetic", "mnist", "deviations", "protocols", "collapse", "matched"}


@pytest.mark.slow
def test_plotting_with_partial_results_draws_what_it_can(tmp_path):
    from refprune.experiments.figures import run_figures
    out = tmp_path / "figures"
    entries = run_figures(list(GROUPS), tmp_path / "empty-results", out, log=None)
    stems = {e["stem"] for e in entries}
    assert {"fig2_1_hard_mask", "fig3_1_data_alpha1"} <= stems  # need no results
    assert not any(s.startswith(("lrp_", "fig4_4", "rsweep_")) for s in stems)
    assert (out / "README.md").exists()


def test_coarse_to_fine_is_a_permutation_that_starts_with_the_ends_and_the_middle():
    from refprune.experiments.figures.mnist import coarse_to_fine
    values = [round(0.1 * i, 1) for i in range(1, 10)]
    order = coarse_to_fine(values[::-1])
    assert sorted(order) == values
    assert order[:3] == [0.1, 0.9, 0.5]
    assert coarse_to_fine([0.7, 0.3]) == [0.3, 0.7]


def test_the_sweep_figure_draws_only_the_longest_protocol_present():
    from refprune.experiments.figures.mnist_sweep import longest_protocol
    recs = [{"job": {"name": n, "config": {"epochs": e}}} for n, e in (("a_e2", 2), ("b_e15", 15), ("c_e15", 15))]
    assert [r["job"]["name"] for r in longest_protocol(recs)] == ["b_e15", "c_e15"]
    assert longest_protocol([]) == []


@pytest.mark.slow
def test_reading_numbers_script_prints_every_section_from_the_committed_results():
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "scripts" / "reading_numbers.py")],
                         capture_output=True, text=True, check=True).stdout
    for title in ("Overfit R² per α", "pruning after training", "pruning before training", "Table 4.6 runs",
                  "under H1 and H2: sparsity at the end"):
        assert title in out
    assert "(no results)" not in out


def fake_run(value: float) -> dict:
    """A Table 4.6 run record whose every recorded metric is ``value``."""
    last = {f"{split}_{q}_{mask}": value for split in ("train", "val") for q in ("loss", "accuracy")
            for mask in ("soft", "hard")}
    return {"config": {"method": "lrp"}, "epochs": [{"epoch": 1, **last}],
            "summary": {"test_loss": value, "test_accuracy": value}}


# ---------------------------------------------------------------- figures fit for a paper


def test_a_zero_sparsity_bar_chart_says_zero_percent_and_every_bar_carries_its_value():
    from refprune.experiments.figures.mnist_seeds import sparsity_figure
    fig = sparsity_figure([{"summary": {"sparsity_per_layer": [0.0, 0.0, 0.0]}}], "run")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts.count("0.0%") == 3 and any(t.startswith("0% sparsity") for t in texts)
    fig = sparsity_figure([{"summary": {"sparsity_per_layer": [0.25, 0.5, 0.125]}}], "run")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert {"25.0%", "50.0%", "12.5%"} <= set(texts) and not any("0% sparsity" in t for t in texts)


def test_soft_and_hard_curves_differ_in_line_style():
    from refprune.experiments.figures.mnist_seeds import curves_figure
    fig = curves_figure([fake_run(0.5)], "run")
    styles = {line.get_label(): (line.get_linestyle(), line.get_marker()) for line in fig.axes[0].lines}
    assert styles["train (soft mask)"] != styles["train (hard mask)"]


def test_suptitle_does_not_overlap_the_panel_titles(tmp_path):
    from refprune.experiments.figures.mnist_seeds import curves_figure
    fig = curves_figure([fake_run(0.5)], "a long suptitle " * 4)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    sup = fig._suptitle.get_window_extent(renderer)
    for ax in fig.axes:
        assert not sup.overlaps(ax.title.get_window_extent(renderer))


def test_median_iqr_band_is_the_quartiles_and_clipped_points_are_marked():
    import matplotlib.pyplot as plt
    import numpy as np

    from refprune.experiments.figures.common import mark_clipped, median_iqr
    runs = np.array([[0.0, -5.0], [1.0, 0.5], [2.0, 0.6], [3.0, 0.7], [4.0, 0.8]])  # seeds × x
    fig, ax = plt.subplots()
    line = median_iqr(ax, [0, 1], runs, "train")
    np.testing.assert_array_equal(line.get_ydata(), [2.0, 0.6])  # the median, not the mean (0.34 at x = 1)
    assert mark_clipped(ax, [0, 1], runs.min(axis=0), -0.2) == 1  # only x = 1 has a value below -0.2
    plt.close(fig)


def test_data_samples_job_keeps_the_first_images_of_the_training_file(tmp_path):
    import numpy as np

    from refprune.data.idx import write_idx
    from refprune.data.mnist import MNIST_FILES
    from refprune.experiments.jobs_data import run_data_samples_job
    images = np.arange(6 * 4 * 4, dtype=np.uint8).reshape(6, 4, 4)
    labels = np.array([5, 0, 4, 1, 9, 2], np.uint8)
    for role, arr in (("train_images", images), ("train_labels", labels), ("test_images", images),
                      ("test_labels", labels)):
        write_idx(tmp_path / MNIST_FILES[role], arr)
    job = {"name": "s", "kind": "data_samples", "data": "fashion-mnist", "data_dir": str(tmp_path), "count": 4}
    record, arrays = run_data_samples_job(job)
    np.testing.assert_array_equal(arrays["images"], images[:4])
    assert record["labels"] == [5, 0, 4, 1] and record["class_names"][0] == "T-shirt/top"


def test_redrawing_one_group_keeps_the_other_groups_in_the_index(tmp_path):
    from refprune.experiments.figures import run_figures
    results, out = tmp_path / "results", tmp_path / "figures"
    run_figures(["masks", "synthetic"], results, out, log=None)
    both = (out / "README.md").read_text()
    assert "fig2_1_hard_mask" in both and "fig3_1_data_alpha1" in both and "- **synthetic**" in both
    run_figures(["masks"], results, out, log=None)
    assert (out / "README.md").read_text() == both  # nothing changed, so the index is the same, byte for byte
    (out / "index.json").write_text("not json")
    run_figures(["masks"], results, out, log=None)  # a broken state file: only the group drawn is listed
    only = (out / "README.md").read_text()
    assert "fig2_1_hard_mask" in only and "fig3_1_data_alpha1" not in only


def test_a_pipe_inside_a_markdown_cell_is_escaped_and_kept_in_the_csv(tmp_path):
    from refprune.experiments.figures.common import write_md_csv
    md = write_md_csv(tmp_path, "t", ["mean |error|", "b"], [{"mean |error|": "0.62 | 0.57", "b": 1}])
    assert md[0] == r"| mean \|error\| | b |" and md[2] == r"| 0.62 \| 0.57 | 1 |"
    assert all(line.replace(r"\|", "").count("|") == 3 for line in md)  # two cells on every line
    assert "0.62 | 0.57" in (tmp_path / "t.csv").read_text()
