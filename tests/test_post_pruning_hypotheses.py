"""The post-training pruning hypotheses of Figs. 4.4/4.5 (issue 16, point 4): a network per
ratio, fine-tuning after pruning, and their comparison with the thesis's Fig. 4.5."""

import json

import numpy as np
import pytest

from refprune.data.tasks import load_task
from refprune.experiments.figures.synthetic_hypotheses import THESIS_FIG45, THESIS_RATIOS, rows
from refprune.experiments.jobs import run_post_pruning_job
from refprune.train.baselines import per_ratio_network_pruning, post_training_pruning
from refprune.train.loop import TrainConfig

LAYERS = (1, 8, 8, 1)
CFG = TrainConfig(method="dense", loss="mse", epochs=2, batch_size=64, lr=1e-2)


@pytest.fixture(scope="module")
def data():
    return load_task("synthetic", alpha=2)


def test_a_network_per_ratio_trains_a_different_network_for_each_ratio(data):
    shared = post_training_pruning(data, LAYERS, CFG, [0.0, 0.0])
    pernet = per_ratio_network_pruning(data, LAYERS, CFG, [0.0, 0.0])
    assert shared[0]["val_r2"] == shared[1]["val_r2"]   # one network, the same ratio: the same score
    assert pernet[0]["val_r2"] != pernet[1]["val_r2"]   # two networks (seeds 0 and 1)
    assert pernet[0]["val_r2"] == shared[0]["val_r2"]   # ratio 0 of seed 0 is the shared network itself


def test_the_fine_tuning_hypothesis_reports_the_scores_after_fine_tuning(data):
    job = {"kind": "post_pruning", "data": "synthetic", "alpha": 2, "seed": 0, "epochs": 2, "batch_size": 64,
           "lr": 1e-2, "layers": list(LAYERS), "ratios": [0.0, 0.9], "hypothesis": "finetune", "finetune_epochs": 3}
    tuned, _ = run_post_pruning_job(job)
    plain, _ = run_post_pruning_job({**job, "hypothesis": "shared"})
    assert tuned["hypothesis"] == "finetune"
    assert tuned["by_ratio"][1]["val_r2"] != plain["by_ratio"][1]["val_r2"]  # fine-tuning changed the pruned net
    with pytest.raises(ValueError, match="hypothesis"):
        run_post_pruning_job({**job, "hypothesis": "nope"})


def write(results, name, alpha, seed, val):
    rec = {"job": {"name": name}, "alpha": alpha, "seed": seed,
           "by_ratio": [{"ratio": p, "val_r2": v} for p, v in zip(THESIS_RATIOS, val)]}
    (results / f"{name}.json").write_text(json.dumps(rec))


def test_the_table_measures_the_distance_to_the_thesis_min_and_max(tmp_path):
    thesis = THESIS_FIG45[22]
    hi = [1.0 if t is None else t for t in thesis["max"]]
    write(tmp_path, "postprune_pernet_p2_a22_s0", 22, 0, thesis["min"])   # exactly the thesis's min …
    write(tmp_path, "postprune_pernet_p2_a22_s1", 22, 1, hi)              # … and max
    write(tmp_path, "postprune_ft_p2_a22_s0", 22, 0, np.array(thesis["min"]) + 0.1)
    write(tmp_path, "postprune_ft_p2_a22_s1", 22, 1, np.array(hi) + 0.1)
    table = {r["hypothesis"]: r for r in rows(tmp_path, "p2", [22])}
    assert table["pernet"]["mean |error|"] == "0.000"
    assert table["ft"]["mean |error|"] == "0.100"
    assert table["shared"]["min R² (ours | thesis)"] == "not run"


def test_a_network_per_ratio_with_fine_tuning_fine_tunes_each_network(data):
    plain = per_ratio_network_pruning(data, LAYERS, CFG, [0.9, 0.9])
    tuned = per_ratio_network_pruning(data, LAYERS, CFG, [0.9, 0.9], finetune_epochs=3)
    assert tuned[0]["val_r2"] != plain[0]["val_r2"] and tuned[0]["val_r2"] != tuned[1]["val_r2"]
